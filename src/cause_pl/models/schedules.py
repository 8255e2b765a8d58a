"""Learning-rate schedules of the CAUSE regressor: none, linear warmup + cosine decay, or plateau."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch

SCHEDULERS: tuple[str, ...] = ("none", "cosine", "plateau")
"""``none``: constant lr (after the optional linear warmup); ``cosine``: linear warmup, then cosine
decay to 0 at the end of training (``trainer.estimated_stepping_batches``), stepped per batch;
``plateau``: halve the lr when ``val/mae`` has not improved for 3 validations (no warmup)."""


PLATEAU_FACTOR = 0.5


PLATEAU_PATIENCE = 3


def warmup_cosine_factor(warmup_steps: int, total_steps: int | None) -> Callable[[int], float]:
    """lr multiplier per optimizer step: linear warmup to 1, then constant or cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if total_steps is None:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def deferred_cosine_factor(warmup_steps: int, total_steps: Callable[[], float]) -> Callable[[int], float]:
    """:func:`warmup_cosine_factor` whose total is read (once) only when the decay begins.

    The total is ``trainer.estimated_stepping_batches``; reading it in ``configure_optimizers`` would
    build the train dataloader before a checkpoint's loop state is loaded, and Lightning restores the
    loader's position only into the loader it builds after restoring, so a resumed run would not
    continue where it stopped.
    """
    before_decay = warmup_cosine_factor(warmup_steps, None)
    decay: list[Callable[[int], float]] = []

    def factor(step: int) -> float:
        if step <= warmup_steps:  # no decay yet: the same factor whatever the total
            return before_decay(step)
        if not decay:
            estimate = total_steps()
            if not math.isfinite(estimate):
                raise ValueError(FINITE_LENGTH)
            decay.append(warmup_cosine_factor(warmup_steps, int(estimate)))
        return decay[0](step)

    return factor


FINITE_LENGTH = (
    "CAUSERegressor: scheduler='cosine' needs a finite training length; set the trainer's max_steps or max_epochs"
)


def lr_schedule(optimizer: torch.optim.Optimizer, scheduler: str, warmup_steps: int, trainer: pl.Trainer) -> Any:
    """What ``configure_optimizers`` returns for ``optimizer`` under the named schedule (see ``SCHEDULERS``)."""
    if scheduler == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": "val/mae", "interval": "epoch", "strict": False},
        }
    if scheduler == "none" and warmup_steps == 0:
        return optimizer
    factor = warmup_cosine_factor(warmup_steps, None)
    if scheduler == "cosine":
        if trainer.max_steps < 0 and (trainer.max_epochs is None or trainer.max_epochs < 0):
            raise ValueError(FINITE_LENGTH)
        factor = deferred_cosine_factor(warmup_steps, lambda: trainer.estimated_stepping_batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
