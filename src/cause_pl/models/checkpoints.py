"""Safe checkpoint loading: rebuild a LightningModule from a checkpoint holding only plain data.

``torch.load(weights_only=True)`` unpickles tensors, containers and plain Python types only, so a
checkpoint from an untrusted source cannot run code. The module class is checked from the
state-dict layout, so handing a GANimation checkpoint to a CAUSE loader is a clear error rather
than a wall of missing keys.
"""

from __future__ import annotations

import inspect
import pickle
import struct
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch

ModuleT = TypeVar("ModuleT", bound=pl.LightningModule)

STATE_PREFIXES: dict[str, str] = {"CAUSERegressor": "net.", "GANimation": "generator."}
"""Which state-dict key prefix identifies a checkpoint of each module class."""


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, unpickling plain data only; ValueError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: not loadable with weights_only=True ({error})") from error
    except (RuntimeError, EOFError, IndexError, KeyError, struct.error) as error:  # garbage in the pickle stream
        raise ValueError(f"{path}: not a PyTorch checkpoint ({error})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def checkpoint_class(checkpoint: dict[str, Any]) -> str | None:
    """Name of the cause-pl module class whose weights ``checkpoint`` holds, or None."""
    keys = checkpoint["state_dict"].keys()
    for name, prefix in STATE_PREFIXES.items():
        if any(key.startswith(prefix) for key in keys):
            return name
    return None


def load_module(cls: type[ModuleT], path: str | Path, map_location: str | torch.device = "cpu") -> ModuleT:
    """Rebuild ``cls`` (in eval mode) from the checkpoint at ``path`` with ``weights_only=True``.

    Hyperparameters that ``cls.__init__`` accepts are passed to it; ``on_load_checkpoint`` then
    restores what the module keeps beside its weights.
    """
    checkpoint = read_checkpoint(path, map_location)
    found = checkpoint_class(checkpoint)
    if found != cls.__name__:
        raise ValueError(
            f"{path}: holds {'a ' + found if found else 'an unknown module'}'s weights, "
            f"expected a {cls.__name__} checkpoint"
        )
    _check_finite(path, checkpoint["state_dict"])
    accepted = inspect.signature(cls.__init__).parameters
    hparams = {
        name: value
        for name, value in checkpoint.get("hyper_parameters", {}).items()
        if name in accepted and name != "self"
    }
    model = cls(**hparams)
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(map_location).eval()


def _check_finite(path: str | Path, state_dict: dict[str, Any]) -> None:
    """ValueError naming ``path`` and the first tensor (weights or statistics) holding NaN or inf."""
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{path}: state_dict entry {name!r} holds NaN or infinite values; unusable checkpoint")
