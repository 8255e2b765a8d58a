"""Learning-rate schedules of the CAUSE regressor: none, linear warmup + cosine decay, or plateau."""

from __future__ import annotations

import math
from collections.abc import Callable

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
