"""LightningModules: training logic around the plain nets of ``cause_pl.nets``."""

from __future__ import annotations

from cause_pl.models.cause import SCHEDULERS, CAUSERegressor, load_cause_checkpoint, masked_l1
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint

__all__ = [
    "SCHEDULERS",
    "CAUSERegressor",
    "GANimation",
    "load_cause_checkpoint",
    "load_ganimation_checkpoint",
    "masked_l1",
]
