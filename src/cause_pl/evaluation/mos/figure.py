"""Fig. 4 of the paper: naturalness MOS per system, bars with 95% CI whiskers, on the 1..5 scale."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cause_pl.evaluation.mos import SCALE
from cause_pl.evaluation.mos.score import MosResult
from cause_pl.evaluation.plots import save_figure


def mos_bar_chart(result: MosResult, title: str = "Naturalness scores") -> Figure:
    """Bars of MOS per system (x) on a 1..5 axis (y), whiskers at the 95% CI, values written above."""
    systems = result.systems
    figure = Figure(figsize=(max(4.0, 0.9 * len(systems) + 2.0), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(systems), dtype=float)
    means = np.array([s.mos for s in systems], dtype=float)
    errors = np.nan_to_num(np.array([[s.mos - s.ci_low for s in systems], [s.ci_high - s.mos for s in systems]]))
    axes.bar(
        positions,
        np.nan_to_num(means - 1.0),
        0.6,
        bottom=1.0,
        yerr=errors,
        capsize=4,
        color="#1f77b4",
        error_kw={"elinewidth": 1.0, "ecolor": "#333333"},
    )
    for x, score in zip(positions, systems, strict=True):
        if not math.isnan(score.mos):
            top = score.ci_high if not math.isnan(score.ci_high) else score.mos
            axes.text(x, min(top + 0.05, 4.9), f"{score.mos:.2f}", ha="center", va="bottom", fontsize=9)
    axes.set_xticks(positions, [s.system for s in systems])
    axes.set_xlim(-0.6, len(systems) - 0.4)
    axes.set_ylim(1.0, 5.0)
    axes.set_yticks(list(SCALE), [f"{value} {label}" for value, label in SCALE.items()])
    axes.set_ylabel("Naturalness (MOS, 95% CI)")
    axes.set_title(f"{title} ({len(result.listeners)} listeners)", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    return figure


def save_mos_chart(result: MosResult, path: Path) -> Path:
    """Write :func:`mos_bar_chart` as a PNG (atomically)."""
    return save_figure(mos_bar_chart(result), path, dpi=120)
