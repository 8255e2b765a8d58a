"""``AUReportCallback``: after each validation (and test), the per-AU report as a table, a bar
chart, and predicted vs true AU tracks of a few fixed utterances.

The module must keep its latest ``AUReport`` per stage in ``pl_module.last_report`` (as
``CAUSERegressor`` does). The report is read in ``on_validation_end``/``on_test_end``, not in the
epoch-end hooks: Lightning runs callbacks' ``on_*_epoch_end`` before the module's, where the report
is computed, so there it would still be the previous epoch's.

What each logger of the trainer receives (on global rank zero, at ``trainer.global_step``):

- ``WandbLogger``: ``{stage}/au_report`` (``wandb.Table``, columns of ``AUReport.to_rows()``),
  ``{stage}/au_{metric}_bars`` (image) and ``{stage}/au_tracks`` (one image per utterance,
  captioned with its key).
- a logger whose ``experiment`` is a TensorBoard ``SummaryWriter`` (``TensorBoardLogger``):
  ``add_text("{stage}/au_report", markdown)``, ``add_figure("{stage}/au_{metric}_bars")`` and
  ``add_figure("{stage}/au_tracks/{key}")``.
- others (``CSVLogger``) receive nothing from here.

Files, always, in ``{trainer.log_dir or default_root_dir}/au_report/``:
``epoch{E:03d}_{stage}.md`` and ``.csv`` (cheap, greppable, there even when a W&B run is lost).
When no logger above took the figures, also ``epoch{E:03d}_{stage}_bars.png`` and
``epoch{E:03d}_{stage}_tracks_{key}.png``. Several validations within one epoch overwrite them.

Errors raise: a module without reports, a batch without the expected keys, or a failing logger
stops the run rather than hiding the problem.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, cast

import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from PIL import Image
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor

from cause_pl.au import AU_LABELS, AU_MAX, AU_MIN
from cause_pl.evaluation.plots import au_tracks_figure, figure_to_png, per_au_bar_chart, write_png
from cause_pl.metrics.report import METRIC_NAMES, AUReport

REPORT_DIRNAME = "au_report"
BATCH_KEYS: tuple[str, ...] = ("mel", "au", "mask", "lengths", "keys")


@dataclass(frozen=True)
class TrackedUtterance:
    """One utterance plotted at every evaluation, kept on CPU and cut to its length."""

    key: str
    mel: Tensor
    au: Tensor
    mask: Tensor


@dataclass
class _Figures:
    """One evaluation's figures, rendered to PNG at most once however many consumers they have."""

    bars: Figure
    tracks: dict[str, Figure]

    @cached_property
    def pngs(self) -> tuple[bytes, dict[str, bytes]]:
        return figure_to_png(self.bars), {key: figure_to_png(fig) for key, fig in self.tracks.items()}


class _Reporting(Protocol):
    """What the callback needs of the module: its latest report per stage."""

    last_report: Mapping[str, AUReport]


class AUReportCallback(pl.Callback):
    """Log the per-AU report, its bar chart and AU tracks of fixed utterances; see the module doc.

    Args:
        num_tracks: utterances whose tracks are plotted: the first ones of the first batch of each
            stage, remembered once so every epoch shows the same ones (fewer if that batch is smaller).
        every_n_epochs: report validation when ``(epoch + 1) % every_n_epochs == 0`` while fitting
            (Lightning's convention); ``trainer.validate`` and ``trainer.test`` always report.
        metric: the metric of the bar chart, one of ``METRIC_NAMES``.
        fps: frame rate of the AU sequences, for the time axis of the tracks.
    """

    def __init__(self, num_tracks: int = 3, every_n_epochs: int = 1, metric: str = "mae", fps: int = 25) -> None:
        if num_tracks < 0 or every_n_epochs < 1 or fps <= 0:
            raise ValueError(
                f"AUReportCallback: need num_tracks >= 0, every_n_epochs >= 1, fps > 0; "
                f"got {num_tracks}, {every_n_epochs}, {fps}"
            )
        if metric not in METRIC_NAMES:
            raise ValueError(f"AUReportCallback: metric must be one of {METRIC_NAMES}, got {metric!r}")
        self.num_tracks = num_tracks
        self.every_n_epochs = every_n_epochs
        self.metric = metric
        self.fps = fps
        self.tracked: dict[str, list[TrackedUtterance]] = {}
        """The fixed utterances per stage ("val", "test"); filled on rank zero only."""
        self._report_dir: Path | None = None
        self._reported: dict[str, AUReport] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(getattr(pl_module, "last_report", None), Mapping):
            raise TypeError(
                f"AUReportCallback: {type(pl_module).__name__} has no `last_report` "
                "mapping of stage -> AUReport (see CAUSERegressor)"
            )
        # trainer.log_dir broadcasts: it must be read on every rank, so here rather than on rank 0.
        self._report_dir = Path(trainer.log_dir or trainer.default_root_dir) / REPORT_DIRNAME

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._remember("val", trainer, batch, dataloader_idx)

    def on_test_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._remember("test", trainer, batch, dataloader_idx)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        if trainer.sanity_checking or (fitting and (trainer.current_epoch + 1) % self.every_n_epochs):
            return
        self._report("val", trainer, pl_module)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report("test", trainer, pl_module)

    # --- internals -----------------------------------------------------------------------------

    def _remember(self, stage: str, trainer: pl.Trainer, batch: Any, dataloader_idx: int) -> None:
        if stage in self.tracked or dataloader_idx != 0 or not trainer.is_global_zero:
            return
        missing = [key for key in BATCH_KEYS if key not in batch]
        if missing:
            raise KeyError(f"AUReportCallback: {stage} batches must be dicts with {BATCH_KEYS}; missing {missing}")
        count = min(self.num_tracks, len(batch["keys"]))
        lengths = batch["lengths"][:count].tolist()
        self.tracked[stage] = [
            TrackedUtterance(
                key=str(batch["keys"][row]),
                mel=batch["mel"][row, :length].detach().cpu().clone(),
                au=batch["au"][row, :length].detach().float().cpu().clone(),
                mask=batch["mask"][row, :length].detach().cpu().clone(),
            )
            for row, length in enumerate(lengths)
        ]

    def _report(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        report = cast(_Reporting, pl_module).last_report.get(stage)  # setup() checked last_report
        if report is None or report is self._reported.get(stage):
            raise RuntimeError(
                f"AUReportCallback: {type(pl_module).__name__}.last_report[{stage!r}] "
                f"was not set by this {stage} run; the module must store a new "
                f"AUReport there in on_{'validation' if stage == 'val' else stage}_epoch_end"
            )
        self._reported[stage] = report
        step, stem = trainer.global_step, f"epoch{trainer.current_epoch:03d}_{stage}"
        figures = _Figures(
            bars=per_au_bar_chart(report, self.metric),
            tracks={
                u.key: self._tracks_figure(
                    u, pl_module, f"{stage} {u.key} · epoch {trainer.current_epoch} · step {step}"
                )
                for u in self.tracked.get(stage, [])
            },
        )
        figures_logged = False
        for logger in trainer.loggers:
            figures_logged |= _log_to(logger, stage, self.metric, report, figures, step)
        self._write_files(stem, report, None if figures_logged else figures)

    def _tracks_figure(self, utterance: TrackedUtterance, pl_module: pl.LightningModule, title: str) -> Figure:
        pred = _predict(pl_module, utterance.mel)
        valid = utterance.mask
        if valid.any():
            mae = (pred[valid] - utterance.au[valid]).abs().mean().item()
            title += f" · MAE {mae:.3f} on {int(valid.sum())} valid frames"
        else:
            title += " · no valid frame"
        targets = getattr(pl_module, "targets", None)  # a CAUSERegressor names its columns
        labels = AU_LABELS if targets is None else targets.labels
        return au_tracks_figure(pred.numpy(), utterance.au.numpy(), valid.numpy(), self.fps, title, labels=labels)

    def _write_files(self, stem: str, report: AUReport, figures: _Figures | None) -> None:
        if self._report_dir is None:
            raise RuntimeError("AUReportCallback: setup() was not called by the trainer")
        directory = self._report_dir
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{stem}.md").write_text(report.to_markdown() + "\n", encoding="utf-8")
        rows = report.to_rows()
        with open(directory / f"{stem}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        if figures is None:
            return
        bars, tracks = figures.pngs
        write_png(bars, directory / f"{stem}_bars.png")
        for key, png in tracks.items():
            write_png(png, directory / f"{stem}_tracks_{_file_safe(key)}.png")


def _predict(pl_module: pl.LightningModule, mel: Tensor) -> Tensor:
    """The module's AUs (T, K) for one utterance, in eval mode without gradients, clamped like
    the predictions the metrics score; the module's train/eval mode is restored afterwards."""
    was_training = pl_module.training
    pl_module.eval()
    try:
        with torch.no_grad():
            # Lightning types .dtype as str | torch.dtype; it only ever holds a torch.dtype.
            pred = pl_module(mel.unsqueeze(0).to(pl_module.device, pl_module.dtype))[0]  # type: ignore[arg-type]
    finally:
        pl_module.train(was_training)
    finalise = getattr(pl_module, "finalise", None)  # a CAUSERegressor maps outputs to its targets
    return (finalise(pred) if finalise is not None else pred.clamp(AU_MIN, AU_MAX)).float().cpu()


def _log_to(logger: Logger, stage: str, metric: str, report: AUReport, figures: _Figures, step: int) -> bool:
    """Send the report to one logger; True when it took the figures."""
    if isinstance(logger, WandbLogger):
        rows = report.to_rows()
        columns = list(rows[0])
        logger.log_table(
            key=f"{stage}/au_report",
            columns=columns,
            data=[[row[column] for column in columns] for row in rows],
            step=step,
        )
        bars, tracks = figures.pngs
        logger.log_image(key=f"{stage}/au_{metric}_bars", images=[_pil(bars)], step=step)
        if tracks:
            logger.log_image(
                key=f"{stage}/au_tracks", images=[_pil(png) for png in tracks.values()], step=step, caption=list(tracks)
            )
        return True
    writer: Any = getattr(logger, "experiment", None)  # the base Logger declares none; its subclasses do
    if callable(getattr(writer, "add_figure", None)) and callable(getattr(writer, "add_text", None)):
        writer.add_text(f"{stage}/au_report", report.to_markdown(), global_step=step)
        writer.add_figure(f"{stage}/au_{metric}_bars", figures.bars, global_step=step, close=False)
        for key, figure in figures.tracks.items():
            writer.add_figure(f"{stage}/au_tracks/{key}", figure, global_step=step, close=False)
        return True
    return False


def _pil(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


def _file_safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
