"""Safe checkpoint loading: rebuild a LightningModule from a checkpoint holding only plain data.

``torch.load(weights_only=True)`` unpickles tensors, containers and plain Python types only, so a
checkpoint from an untrusted source cannot run code. The module class is checked from the
state-dict layout, so handing a GANimation checkpoint to a CAUSE loader is a clear error rather
than a wall of missing keys.
"""

from __future__ import annotations

import inspect
import pickle
import re
import struct
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch

ModuleT = TypeVar("ModuleT", bound=pl.LightningModule)

STATE_PREFIXES: dict[str, str] = {"CAUSERegressor": "net.", "GANimation": "generator."}
"""Which state-dict key prefix identifies a checkpoint of each module class."""
UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
"""How torch's refusal names the class or function a checkpoint pickles (``GLOBAL module.Name ...``)."""
UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(.+)")
"""Where torch's refusal says what else it could not unpickle (an unsupported opcode, ...)."""


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, unpickling plain data only; ValueError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    checkpoint = safe_load(path, map_location)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def safe_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a refused or garbled pickle is a ValueError naming ``path``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: not loadable with weights_only=True ({refusal_reason(error)}); "
            "only plain tensors and containers are accepted"
        ) from error
    except (RuntimeError, EOFError, IndexError, KeyError, struct.error) as error:  # garbage in the pickle stream
        raise ValueError(f"{path}: not a PyTorch checkpoint ({error})") from error


def refusal_reason(error: pickle.UnpicklingError) -> str:
    """What ``torch.load(weights_only=True)``'s long refusal says is wrong, in a few words."""
    message = str(error)
    unsafe = UNSAFE_GLOBAL.search(message)
    if unsafe:
        return f"it holds {unsafe.group(1)}"
    detail = UNPICKLER_ERROR.search(" ".join(message.split()))
    reason = detail.group(1).split(" Check the documentation")[0] if detail else message.splitlines()[0]
    return f"the safe unpickler refused it: {reason}"


def check_class(path: str | Path, checkpoint: dict[str, Any], expected: str) -> None:
    """ValueError unless ``checkpoint`` holds the weights of the cause-pl module class named ``expected``."""
    found = checkpoint_class(checkpoint)
    if found != expected:
        raise ValueError(
            f"{path}: holds {'a ' + found if found else 'an unknown module'}'s weights, "
            f"expected a {expected} checkpoint"
        )


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
    check_class(path, checkpoint, cls.__name__)
    check_finite_state(path, checkpoint["state_dict"])
    model = cls(**accepted_hparams(cls, checkpoint))
    try:
        model.on_load_checkpoint(checkpoint)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(map_location).eval()


def accepted_hparams(cls: type, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's hyperparameters that ``cls.__init__`` takes (not Lightning's ``_class_path`` and the like)."""
    accepted = inspect.signature(cls).parameters
    return {name: value for name, value in checkpoint.get("hyper_parameters", {}).items() if name in accepted}


def check_fits(module: pl.LightningModule, checkpoint: dict[str, Any], prefix: str, hparams: tuple[str, ...]) -> None:
    """ValueError unless ``checkpoint`` can load into ``module``: the same ``hparams`` (where it records them)
    and, under ``prefix``, the same state-dict names and shapes; for ``on_load_checkpoint``, before the weights.
    """
    recorded = checkpoint.get("hyper_parameters", {})
    name = type(module).__name__
    for key in hparams:
        if key in recorded and recorded[key] != module.hparams[key]:
            raise ValueError(
                f"{name}: the checkpoint was trained as {key}={recorded[key]!r}, "
                f"this config builds {key}={module.hparams[key]!r}"
            )
    own = {key: value.shape for key, value in module.state_dict().items() if key.startswith(prefix)}
    given = {
        key: getattr(value, "shape", None) for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)
    }
    mismatches = {
        "missing": sorted(own.keys() - given.keys()),
        "unexpected": sorted(given.keys() - own.keys()),
        "of another shape": sorted(key for key in own.keys() & given.keys() if own[key] != given[key]),
    }
    problems = [f"{len(keys)} {what} (e.g. {keys[0]!r})" for what, keys in mismatches.items() if keys]
    if problems:
        built = ", ".join(f"{key}={module.hparams[key]!r}" for key in hparams if module.hparams[key] is not None)
        raise ValueError(
            f"{name}: the checkpoint's weights do not fit the net built with {built}: {', '.join(problems)}"
        )


def check_finite_state(path: str | Path, state_dict: dict[str, Any]) -> None:
    """ValueError naming ``path`` and the first tensor (weights or statistics) holding NaN or inf."""
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{path}: state_dict entry {name!r} holds NaN or infinite values; unusable checkpoint")
