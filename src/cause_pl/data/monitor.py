"""``SkippedSamplesMonitor``: damaged data made visible (logged per epoch, summed over workers and ranks).

Streams count the samples they skip as unreadable in a shared-memory slot per DataLoader worker
(:class:`cause_pl.data.reading.ReadErrors`); this callback reads a data module's counts at the end of
each epoch, sums them over ranks and logs them:

- ``data/skipped_samples``: training, per epoch;
- ``data/val_skipped_samples`` and ``data/test_skipped_samples``: per validation or test run.

At the end of ``fit`` and ``test``, when anything was skipped, rank 0 logs a one-line summary.
:meth:`cause_pl.data.base.ShardDataModule.setup` adds the callback to the trainer itself, so
configs need not name it. Each unreadable shard remainder (the part after a damaged member) counts
once, like one skipped sample.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)

NAMES = {"train": "data/skipped_samples", "val": "data/val_skipped_samples", "test": "data/test_skipped_samples"}


class SkippedSamplesMonitor(pl.Callback):
    """Logs the samples a shard data module skipped, per epoch, summed over ranks; summary at the end."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(NAMES, 0)

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        datamodule: Any = getattr(trainer, "datamodule", None)
        counter = getattr(datamodule, "skipped_samples", None)
        if counter is None:
            return
        local = torch.tensor(float(counter(split)), device=pl_module.device)
        total = int(trainer.strategy.reduce(local, reduce_op="sum").item())
        self.totals[split] += total
        # Already summed over ranks, so equal on all of them: syncing (a mean) changes nothing, but says so.
        pl_module.log(NAMES[split], float(total), on_step=False, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer, pl_module, "test")

    def _summary(self, trainer: pl.Trainer, splits: tuple[str, ...]) -> None:
        counts = {split: self.totals[split] for split in splits if self.totals[split]}
        if counts and trainer.is_global_zero:
            detail = ", ".join(f"{split} {count}" for split, count in counts.items())
            log.warning(
                "skipped %d unreadable sample(s) (%s) over all ranks; the warnings above name the shards "
                "(strict=True raises instead)",
                sum(counts.values()),
                detail,
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._summary(trainer, ("train", "val"))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._summary(trainer, ("test",))
