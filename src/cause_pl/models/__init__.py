"""LightningModules: training logic around the plain nets of ``cause_pl.nets`` (the names configs use)."""

from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint

__all__ = ["CAUSERegressor", "GANimation", "load_cause_checkpoint", "load_ganimation_checkpoint"]
