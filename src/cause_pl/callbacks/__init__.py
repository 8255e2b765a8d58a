"""Lightning callbacks: evaluation reports and plots for the models of ``cause_pl.models``."""

from __future__ import annotations

from cause_pl.callbacks.au_report import AUReportCallback, TrackedUtterance

__all__ = ["AUReportCallback", "TrackedUtterance"]
