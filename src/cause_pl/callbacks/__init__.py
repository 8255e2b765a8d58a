"""Lightning callbacks: evaluation reports, plots and GAN sample grids for the models of ``cause_pl.models``."""

from __future__ import annotations

from cause_pl.callbacks.au_report import AUReportCallback, TrackedUtterance
from cause_pl.callbacks.sample_grid import SampleGridCallback

__all__ = ["AUReportCallback", "SampleGridCallback", "TrackedUtterance"]
