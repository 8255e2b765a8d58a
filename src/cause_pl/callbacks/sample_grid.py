"""``SampleGridCallback``: after each validation, a GANimation sample grid of fixed faces edited
towards fixed target AUs, and optionally objective scores of those edits.

Layout (one uint8 RGB PNG; every tile ``S x S`` px, ``S`` = the face size; ``GRID_PAD`` white
pixels between tiles and around the grid): ``3 * num_faces`` rows by ``1 + len(target_aus)``
columns. Each face owns a block of three rows; column 0 holds the input face in the block's first
row (white below it), column ``1 + t`` holds, for target ``t``, top to bottom: the edited image,
the attention mask (grey, white = keep the input pixel) and the colour mask. So a column reads as
one expression, a block as one person. Image size: ``(1 + T) * S + (2 + T) * GRID_PAD`` wide,
``3 * F * S + (3 * F + 1) * GRID_PAD`` high.

Where it goes (global rank zero, not during the sanity check, at ``trainer.global_step``):

- ``WandbLogger``: ``log_image(key="val/sample_grid")``;
- a logger whose ``experiment`` has ``add_image`` (TensorBoard): ``add_image("val/sample_grid")``;
- always the file ``{trainer.log_dir or default_root_dir}/sample_grid/epoch{E:03d}.png``
  (several validations within one epoch overwrite it).

With an ``au_reader`` (images in [-1, 1] -> (B, 17) AUs on the /5 scale, e.g. a frozen
:class:`~cause_pl.evaluation.ganimation.FaceAURegressor`), ``val/au_error`` and ``val/identity``
(:func:`~cause_pl.evaluation.ganimation.au_error` / ``identity_score`` over all edits of the grid) are
logged through ``pl_module.log`` with ``rank_zero_only=True``, so every logger, the progress bar
and checkpoint monitors see them. That is why the work happens in ``on_validation_epoch_end``
(where Lightning accepts ``log`` from callbacks) rather than ``on_validation_end`` (where it does
not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn

from cause_pl.au import AU_COLUMNS, NUM_AUS, au_index
from cause_pl.evaluation.ganimation import AUReader, au_error, identity_score
from cause_pl.media.frames import to_uint8_frames
from cause_pl.nets.ganimation import GeneratorOutput
from cause_pl.targets import TargetSpec

GRID_DIRNAME = "sample_grid"
GRID_KEY = "val/sample_grid"
GRID_PAD = 2
BACKGROUND = 255
ROWS_PER_FACE = 3

EXPRESSIVE_INTENSITY = 0.8
"""4 of 5 on the FACS A-E scale: clearly visible, short of the extreme."""


def _preset(*codes: int) -> list[float]:
    au = [0.0] * NUM_AUS
    for code in codes:
        au[au_index(code)] = EXPRESSIVE_INTENSITY
    return au


DEFAULT_TARGETS: dict[str, list[float]] = {
    "neutral": _preset(),
    "smile": _preset(6, 12),
    "surprise": _preset(1, 2, 5, 26),
    "frown": _preset(4, 15),
    "blink": _preset(45),
}
"""Default target AU vectors (/5 scale), in grid column order."""


def default_targets_for(spec: TargetSpec) -> Tensor:
    """Grid columns for a model conditioned on ``spec`` (on its /upper-bound scale): the default AU
    vectors restricted to an AU subset, or one column per class of a distribution (up to 6), or
    each of the first 5 other targets at 80%."""
    if spec.is_aus:
        rows = [[vector[AU_COLUMNS.index(column)] for column in spec.columns] for vector in DEFAULT_TARGETS.values()]
        return torch.tensor(rows, dtype=torch.float32)
    count = min(spec.size, 6 if spec.kind == "distribution" else 5)
    level = 1.0 if spec.kind == "distribution" else EXPRESSIVE_INTENSITY
    return torch.eye(count, spec.size) * level


def _check_targets(targets: Sequence[Sequence[float]], size: int) -> None:
    if not targets or any(len(target) != size for target in targets):
        raise ValueError(
            f"SampleGridCallback: target_aus must be a non-empty list of {size}-value "
            f"conditioning vectors; got lengths {[len(target) for target in targets]}"
        )


class _Editor(Protocol):
    """What the callback needs of the module: GANimation's ``generate``."""

    def generate(self, image: Tensor, au: Tensor) -> GeneratorOutput: ...


@dataclass(frozen=True)
class SampleFaces:
    """The fixed validation faces of the grid, on CPU: images (F, 3, S, S) in [-1, 1]."""

    keys: list[str]
    images: Tensor


class SampleGridCallback(pl.Callback):
    """Log a grid of fixed faces edited towards fixed target AUs; see the module doc.

    Args:
        num_faces: faces of the grid: the first ones of the first validation batch, remembered
            once (on rank zero) so every epoch shows the same ones (fewer if that batch is smaller).
        target_aus: target AU vectors (each ``NUM_AUS`` values on the /5 scale), one grid column
            each; default :data:`DEFAULT_TARGETS`.
        every_n_epochs: draw when ``(epoch + 1) % every_n_epochs == 0`` while fitting;
            ``trainer.validate`` always draws.
        au_reader: optional independent AU reader for ``val/au_error`` and ``val/identity``; pass it
            in eval mode. It receives the edits on the model's device; an ``nn.Module`` reader is moved there.
    """

    def __init__(
        self,
        num_faces: int = 4,
        target_aus: Sequence[Sequence[float]] | None = None,
        every_n_epochs: int = 1,
        au_reader: AUReader | None = None,
    ) -> None:
        if num_faces < 1 or every_n_epochs < 1:
            raise ValueError(
                f"SampleGridCallback: need num_faces >= 1 and every_n_epochs >= 1, got {num_faces} and {every_n_epochs}"
            )
        targets = list(DEFAULT_TARGETS.values()) if target_aus is None else [list(t) for t in target_aus]
        _check_targets(targets, NUM_AUS)
        if au_reader is not None and not callable(au_reader):
            raise TypeError(f"SampleGridCallback: au_reader must be callable, got {type(au_reader).__name__}")
        self.num_faces = num_faces
        self.target_aus = torch.tensor(targets, dtype=torch.float32)
        self._default_targets = target_aus is None
        self.every_n_epochs = every_n_epochs
        self.au_reader: Callable[[Tensor], Tensor] | None = au_reader
        self.faces: SampleFaces | None = None
        """The fixed faces; set from the first validation batch on rank zero."""
        self._grid_dir: Path | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not callable(getattr(pl_module, "generate", None)):
            raise TypeError(
                f"SampleGridCallback: {type(pl_module).__name__} has no "
                "generate(image, au) -> GeneratorOutput (see GANimation)"
            )
        spec = getattr(pl_module, "targets", None)  # a GANimation conditioned on other targets than the 17 AUs
        if spec is not None and spec.columns != AU_COLUMNS:
            if self._default_targets:
                self.target_aus = default_targets_for(spec)
            _check_targets(self.target_aus.tolist(), spec.size)
        # trainer.log_dir broadcasts: it must be read on every rank, so here rather than on rank 0.
        self._grid_dir = Path(trainer.log_dir or trainer.default_root_dir) / GRID_DIRNAME

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.faces is not None or dataloader_idx != 0 or not trainer.is_global_zero:
            return
        if "image" not in batch or "keys" not in batch:
            raise KeyError(
                f"SampleGridCallback: validation batches must be dicts with 'image' and 'keys'; got {sorted(batch)}"
            )
        count = min(self.num_faces, len(batch["keys"]))
        self.faces = SampleFaces(
            keys=[str(key) for key in batch["keys"][:count]],
            images=batch["image"][:count].detach().float().cpu().clone(),
        )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        if trainer.sanity_checking or (fitting and (trainer.current_epoch + 1) % self.every_n_epochs):
            return
        faces = self.faces
        if not trainer.is_global_zero or faces is None:
            return
        edits = self._edit(pl_module, faces.images)
        grid = sample_grid(faces.images, edits)
        self._publish(trainer, grid, faces.keys)
        if self.au_reader is not None:
            self._score(pl_module, edits, faces.images, self.au_reader)

    # --- internals -----------------------------------------------------------------------------

    def _edit(self, pl_module: pl.LightningModule, images: Tensor) -> list[GeneratorOutput]:
        """One generator output per target, each over all faces ``images``, on CPU."""
        editor = cast(_Editor, pl_module)  # setup() checked that it has generate()
        edits = []
        for target in self.target_aus:
            out = editor.generate(images, target.expand(len(images), -1))
            edits.append(GeneratorOutput(*(part.detach().float().cpu() for part in out)))
        return edits

    def _publish(self, trainer: pl.Trainer, grid: np.ndarray, keys: list[str]) -> None:
        if self._grid_dir is None:
            raise RuntimeError("SampleGridCallback: setup() was not called by the trainer")
        step, epoch = trainer.global_step, trainer.current_epoch
        caption = f"epoch {epoch} · step {step} · faces {', '.join(keys)}"
        for logger in trainer.loggers:
            _log_to(logger, grid, step, caption)
        path = self._grid_dir / f"epoch{epoch:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(path)

    def _score(
        self,
        pl_module: pl.LightningModule,
        edits: list[GeneratorOutput],
        images: Tensor,
        au_reader: Callable[[Tensor], Tensor],
    ) -> None:
        if isinstance(au_reader, nn.Module):
            au_reader.to(pl_module.device)
        generated = torch.cat([edit.image for edit in edits])
        targets = self.target_aus.repeat_interleave(len(images), dim=0)
        sources = images.repeat(len(edits), 1, 1, 1)
        metrics = {
            "val/au_error": au_error(generated.to(pl_module.device), targets, au_reader),
            "val/identity": identity_score(generated, sources),
        }
        pl_module.log_dict(metrics, rank_zero_only=True, batch_size=len(generated))


def sample_grid(inputs: Tensor, edits: Sequence[GeneratorOutput]) -> np.ndarray:
    """The grid (H, W, 3) uint8 of ``inputs`` (F, 3, S, S) in [-1, 1] and one generator output
    per target (each over the F faces); layout in the module doc."""
    faces, _, size, _ = inputs.shape
    rows, cols = ROWS_PER_FACE * faces, 1 + len(edits)
    grid = np.full(
        (rows * size + (rows + 1) * GRID_PAD, cols * size + (cols + 1) * GRID_PAD, 3), BACKGROUND, dtype=np.uint8
    )

    def place(row: int, col: int, tile: np.ndarray) -> None:
        top, left = GRID_PAD + row * (size + GRID_PAD), GRID_PAD + col * (size + GRID_PAD)
        grid[top : top + size, left : left + size] = tile

    for face in range(faces):
        first = ROWS_PER_FACE * face
        place(first, 0, to_uint8_image(inputs[face]))
        for col, edit in enumerate(edits, start=1):
            place(first, col, to_uint8_image(edit.image[face]))
            place(first + 1, col, to_uint8_mask(edit.attention[face]))
            place(first + 2, col, to_uint8_image(edit.color[face]))
    return grid


def to_uint8_image(image: Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8, converted as video frames are."""
    return to_uint8_frames(image.unsqueeze(0))[0]


def to_uint8_mask(mask: Tensor) -> np.ndarray:
    """(1, H, W) in [0, 1] -> (H, W, 3) grey uint8."""
    scaled = (mask.float().cpu() * 255).round().clamp(0, 255).to(torch.uint8)
    return scaled.expand(3, -1, -1).permute(1, 2, 0).numpy()


def _log_to(logger: Logger, grid: np.ndarray, step: int, caption: str) -> None:
    if isinstance(logger, WandbLogger):
        logger.log_image(key=GRID_KEY, images=[Image.fromarray(grid)], step=step, caption=[caption])
        return
    writer: Any = getattr(logger, "experiment", None)  # the base Logger declares none; its subclasses do
    if callable(getattr(writer, "add_image", None)):
        writer.add_image(GRID_KEY, grid, global_step=step, dataformats="HWC")
