"""Public GANimation weights (official, ganimation_replicate, vipermu layouts) as a cause-pl checkpoint.

Source files are read with ``torch.load(weights_only=True)`` only; their keys are mapped onto our nets
by :mod:`cause_pl.models.ganimation_layouts`, the sizes read from the tensor shapes. The checkpoint
written is what ``Trainer.save_checkpoint`` writes at the start of a run: weights, hyperparameters (the
module's defaults for everything but the sizes), fresh optimiser and scheduler states and the module's
own training state, so ``load_ganimation_checkpoint`` reads it and ``fit --ckpt_path`` starts a run
at epoch 0 from the imported weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from cause_pl.media.atomic import atomic_output
from cause_pl.models.checkpoints import check_finite_state, safe_load
from cause_pl.models.ganimation import GANimation
from cause_pl.models.ganimation_layouts import (
    CRITIC_LAYOUTS,
    LAYOUTS,
    Converted,
    convert_critic,
    convert_generator,
    detect_critic_layout,
    detect_generator_layout,
    expected_critic_keys,
    expected_generator_keys,
    strip_module_prefix,
)

DEFAULT_IMAGE_SIZE = 128
"""Resolution of all three public implementations; a generator alone does not record it."""
GENERATOR_DOWN_LEVELS = 2
"""Down (and up) sampling levels of the generator GANimation builds."""
FRESH_CRITIC_LAYERS = 6
FRESH_CRITIC_WIDTH_FACTOR = 32
"""Without a source critic, ours is the official one's shape: 6 layers from the generator's base width
to 32 times it (64 -> 2048 at the official sizes)."""
METADATA_KEY = "ganimation_import"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "generator", "critic")


@dataclass(frozen=True)
class ImportedNet:
    """What one net's import did: for the summary line and the checkpoint's metadata."""

    net: str
    source: Path | None
    layout: str | None
    parameters: int
    dropped: dict[str, int]
    image_size: int
    cond_dim: int

    @property
    def trained(self) -> bool:
        return self.source is not None

    def summary(self) -> str:
        """One line: the layout, the parameter count, what was dropped, the sizes."""
        sizes = f"{self.parameters:,} parameters, image_size {self.image_size}, cond_dim {self.cond_dim}"
        if not self.trained:
            return f"{self.net}: UNTRAINED (fresh initialisation, no source file given), {sizes}"
        dropped = ", ".join(f"{count} {kind}" for kind, count in self.dropped.items() if count) or "nothing"
        return f"{self.net} from {self.source}: {self.layout} layout, {sizes}; dropped {dropped}"

    def metadata(self) -> dict[str, Any]:
        return {
            "trained": self.trained,
            "source": None if self.source is None else str(self.source),
            "layout": self.layout,
            "parameters": self.parameters,
            "dropped": dict(self.dropped),
        }


@dataclass(frozen=True)
class ImportResult:
    """The GANimation module holding the imported weights, and one record per net."""

    model: GANimation
    generator: ImportedNet
    critic: ImportedNet


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in the file at ``path`` (bare or wrapped, ``module.`` stripped), unpickling plain data only."""
    path = Path(path)
    loaded = safe_load(path)
    state = _unwrap(loaded)
    if state is None:
        raise ValueError(f"{path}: holds no state dict (a dict of tensors), found {type(loaded).__name__}")
    try:
        return strip_module_prefix(state)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _unwrap(loaded: object) -> dict[str, torch.Tensor] | None:
    """A dict of tensors: ``loaded`` itself or the one it wraps (under ``state_dict`` or the like)."""
    if not isinstance(loaded, dict):
        return None
    if loaded and all(isinstance(value, torch.Tensor) for value in loaded.values()):
        return {str(key): value for key, value in loaded.items()}
    for key in WRAPPER_KEYS:
        if key in loaded and (inner := _unwrap(loaded[key])) is not None:
            return inner
    return None


def import_ganimation(
    generator: str | Path,
    critic: str | Path | None = None,
    layout: str = "auto",
    image_size: int | None = None,
) -> ImportResult:
    """A :class:`GANimation` holding the source generator's (and critic's) weights.

    ``layout``: ``auto`` (detected from the keys) or one of :data:`LAYOUTS`. ``image_size``: read from
    the critic when there is one (a different value is an error), else 128 unless given.
    """
    if layout != "auto" and layout not in LAYOUTS:
        raise ValueError(f"layout must be auto or one of {', '.join(LAYOUTS)}, got {layout!r}")
    generator = Path(generator)
    gen = _convert(generator, layout, "generator")
    if gen.sizes["num_down"] != GENERATOR_DOWN_LEVELS:
        raise ValueError(
            f"{generator}: a generator with {gen.sizes['num_down']} down-sampling levels; "
            f"GANimation builds {GENERATOR_DOWN_LEVELS}"
        )
    critic_path = None if critic is None else Path(critic)
    crit = None
    if critic_path is not None:
        crit = _convert(critic_path, layout, "critic", prefer=gen.layout)
        _check_critic_fits(critic_path, crit, gen, image_size)
    size = crit.sizes["image_size"] if crit else image_size or DEFAULT_IMAGE_SIZE
    model = _build(size, gen, crit)
    generator_record = _load(model.generator, gen, generator, "generator", size)
    if crit is None or critic_path is None:
        critic_record = ImportedNet("critic", None, None, _count(model.critic), {}, size, gen.sizes["cond_dim"])
    else:
        critic_record = _load(model.critic, crit, critic_path, "critic", size)
    return ImportResult(model.eval(), generator_record, critic_record)


def _convert(path: Path, layout: str, net: str, prefer: str | None = None) -> Converted:
    """``path``'s weights under our names; ``layout`` is the one asked for, or ``auto``; ``prefer``: the name
    to give a critic whose keys two layouts share (official and vipermu), unless one was asked for."""
    state = read_state_dict(path)
    keys = set(state)
    detect, expected = (
        (detect_generator_layout, expected_generator_keys)
        if net == "generator"
        else (detect_critic_layout, expected_critic_keys)
    )
    found = detect(keys)
    if found is None:
        other = detect_critic_layout(keys) if net == "generator" else detect_generator_layout(keys)
        hint = f" (it looks like a {'critic' if net == 'generator' else 'generator'})" if other else ""
        known = "; ".join(f"{name}: {expected(name)}" for name in LAYOUTS)
        raise ValueError(
            f"{path}: not a GANimation {net} of a known layout{hint}: keys {_sample(keys)}; expected {known}"
        )
    wanted = prefer if layout == "auto" else layout
    if net == "critic" and wanted is not None and CRITIC_LAYOUTS[wanted] == CRITIC_LAYOUTS[found]:
        found = wanted  # official and vipermu critics share their keys: name it as asked, or as the generator
    if layout not in ("auto", found):
        raise ValueError(
            f"{path}: not a {net} of the {layout} layout (expected {expected(layout)}); "
            f"its keys are those of the {found} layout"
        )
    convert = convert_generator if net == "generator" else convert_critic
    try:
        return convert(state, found)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _check_critic_fits(path: Path, crit: Converted, gen: Converted, image_size: int | None) -> None:
    if crit.sizes["cond_dim"] != gen.sizes["cond_dim"]:
        raise ValueError(
            f"{path}: the critic predicts {crit.sizes['cond_dim']} AUs, the generator is conditioned on "
            f"{gen.sizes['cond_dim']}"
        )
    if image_size is not None and image_size != crit.sizes["image_size"]:
        raise ValueError(f"{path}: the critic is for {crit.sizes['image_size']} px images, not {image_size}")


def _build(image_size: int, gen: Converted, crit: Converted | None) -> GANimation:
    """GANimation with the sizes read from the sources (the official critic's proportions without one)."""
    base = gen.sizes["base_channels"]
    critic_sizes = (
        (crit.sizes["base_channels"], crit.sizes["num_layers"], crit.sizes["max_channels"])
        if crit
        else (base, FRESH_CRITIC_LAYERS, FRESH_CRITIC_WIDTH_FACTOR * base)
    )
    try:
        return GANimation(
            image_size=image_size,
            cond_dim=gen.sizes["cond_dim"],
            g_base_channels=base,
            g_res_blocks=gen.sizes["num_res_blocks"],
            d_base_channels=critic_sizes[0],
            d_layers=critic_sizes[1],
            d_max_channels=critic_sizes[2],
        )
    except ValueError as error:
        note = "" if crit else f" (the fresh critic has {FRESH_CRITIC_LAYERS} layers: give a multiple of 64)"
        raise ValueError(f"image_size {image_size}: {error}{note}") from error


def _load(net: nn.Module, converted: Converted, path: Path, name: str, image_size: int) -> ImportedNet:
    """Load ``converted`` into ``net`` (every key, every shape); the record of it."""
    own = net.state_dict()
    given = converted.state
    problems = {
        "missing": sorted(own.keys() - given.keys()),
        "unexpected": sorted(given.keys() - own.keys()),
        "of another shape": sorted(key for key in own.keys() & given.keys() if own[key].shape != given[key].shape),
    }
    listed = [f"{what} {_sample(keys)}" for what, keys in problems.items() if keys]
    if listed:
        raise ValueError(f"{path}: the {converted.layout} {name} does not fit our {name}: {'; '.join(listed)}")
    check_finite_state(path, given)
    net.load_state_dict(given)
    return ImportedNet(
        name,
        path,
        converted.layout,
        _count(net),
        {kind: count for kind, count in converted.dropped.items() if count},
        image_size,
        converted.sizes["cond_dim"],
    )


def _count(net: nn.Module) -> int:
    return sum(parameter.numel() for parameter in net.parameters())


def _sample(keys: set[str] | list[str], count: int = 5) -> str:
    ordered = sorted(keys)
    shown = ", ".join(ordered[:count])
    return f"[{shown}{', ...' if len(ordered) > count else ''}] ({len(ordered)})"


def imported_checkpoint(result: ImportResult) -> dict[str, Any]:
    """The checkpoint ``Trainer.save_checkpoint`` would write before the first step of a run."""
    model = result.model
    optimizers, schedulers = model.configure_optimizers()
    checkpoint: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "callbacks": {},
        "optimizer_states": [optimizer.state_dict() for optimizer in optimizers],
        "lr_schedulers": [scheduler.state_dict() for scheduler in schedulers],
        "hparams_name": "kwargs",
        "hyper_parameters": dict(model.hparams),
        METADATA_KEY: {"generator": result.generator.metadata(), "critic": result.critic.metadata()},
    }
    model.on_save_checkpoint(checkpoint)
    return checkpoint


def save_imported(result: ImportResult, out: str | Path) -> Path:
    """Write :func:`imported_checkpoint` to ``out`` atomically; returns ``out``."""
    out = Path(out)
    with atomic_output(out) as temporary:
        torch.save(imported_checkpoint(result), temporary)
    return out
