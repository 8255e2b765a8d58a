"""Lightning callbacks for the models of ``cause_pl.models``: evaluation reports, plots, GAN sample
grids and animation previews."""

from __future__ import annotations

from cause_pl.callbacks.animation_preview import AnimationPreviewCallback
from cause_pl.callbacks.au_report import AUReportCallback, TrackedUtterance
from cause_pl.callbacks.sample_grid import SampleGridCallback

__all__ = ["AUReportCallback", "AnimationPreviewCallback", "SampleGridCallback", "TrackedUtterance"]
