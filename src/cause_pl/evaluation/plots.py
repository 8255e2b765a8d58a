"""Figures for AU evaluation: per-AU scores with their 95% intervals, and AU tracks over time.

Figures are plain ``matplotlib.figure.Figure`` objects drawn on an Agg canvas, never registered
with ``pyplot``: building one changes no global state, works without a display, and needs no
``plt.close`` (drop the reference and it is garbage collected). Render with ``figure_to_png``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from cause_pl.au import ACTION_UNITS, AU_LABELS, AU_MAX, AU_MIN
from cause_pl.media.atomic import atomic_output
from cause_pl.metrics.report import METRIC_NAMES, AUReport, Estimate

DEFAULT_TRACK_AUS: tuple[int, ...] = (1, 4, 6, 12, 25, 26, 45)
"""AU codes plotted by ``au_tracks_figure`` by default: brows, cheeks, smile, mouth opening, blink."""
PREDICTOR_COLORS: dict[str, str] = {"model": "#1f77b4", "zero": "#9e9e9e", "mean": "#ff7f0e"}
METRIC_AXIS_LABELS: dict[str, str] = {
    "mae": "MAE (intensity, 0-5 scale)",
    "mse": "MSE (intensity²)",
    "pcc": "Pearson r",
    "ccc": "Lin's concordance (CCC)",
}
MAX_TRACK_ROWS = 7
"""Track panels per column; more AUs than this are laid out in several columns."""
_AU_NAMES = {au.label: au.name for au in ACTION_UNITS}
_INVALID_SHADE = {"color": "#d62728", "alpha": 0.12, "linewidth": 0}


def per_au_bar_chart(report: AUReport, metric: str = "mae") -> Figure:
    """Bars of ``metric`` per AU for every predictor in ``report`` (model, zero, mean), with 95% CIs.

    The title gives each predictor's value averaged over AUs. Intervals that are NaN (fewer than
    two utterances) are simply not drawn.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"per_au_bar_chart: metric must be one of {METRIC_NAMES}, got {metric!r}")
    labels, predictors = report.labels, list(report.predictors)
    figure = _new_figure(width=max(8.0, 0.8 * len(labels) + 2.0), height=5.5)
    axes = figure.add_subplot()
    width = 0.8 / len(predictors)
    positions = np.arange(len(labels), dtype=float)
    for offset, name in enumerate(predictors):
        estimates = [getattr(report.predictors[name].per_au[label], metric) for label in labels]
        values, errors = _values_and_errors(estimates)
        axes.bar(
            positions + (offset - (len(predictors) - 1) / 2) * width,
            values,
            width,
            yerr=errors,
            capsize=2,
            label=name,
            color=PREDICTOR_COLORS.get(name),
            error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
        )
    axes.set_xticks(
        positions,
        [_au_tick_label(label) for label in labels],
        rotation=40,
        ha="right",
        rotation_mode="anchor",
        fontsize=9,
    )
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_ylabel(METRIC_AXIS_LABELS[metric])
    if metric in ("pcc", "ccc"):
        axes.axhline(0.0, color="black", linewidth=0.6)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    figure.legend(loc="outside right upper", fontsize=9)
    overall = "   ".join(
        f"{name} {_format_estimate(getattr(report.predictors[name].overall, metric))}" for name in predictors
    )
    axes.set_title(
        f"Per-AU {metric.upper()} with 95% CI ({report.num_utterances} utterances, "
        f"{report.num_frames} valid frames)\nmean over AUs: {overall}",
        fontsize=11,
    )
    return figure


def au_tracks_figure(
    pred: ArrayLike,
    true: ArrayLike,
    mask: ArrayLike,
    fps: float = 25,
    title: str = "",
    aus: Sequence[int] | None = None,
    labels: Sequence[str] = AU_LABELS,
) -> Figure:
    """Predicted vs true intensity over time (seconds), one panel per AU code in ``aus``.

    ``pred`` and ``true`` are (T, K) with columns named by ``labels`` (default: the 17 AUs in the
    order of ``cause_pl.au``; other targets, :mod:`cause_pl.targets`, pass theirs); ``mask`` (T,)
    marks valid frames. Panels: the AUs ``aus`` among the columns (default: a few that move with
    speech), or for other targets the first ``2 * MAX_TRACK_ROWS`` columns. Invalid frames are shaded and
    the target is not drawn there (OpenFace's values on them are not measurements). Frame ``i`` is
    centred at ``i / fps`` seconds.
    """
    pred_array, true_array, valid = _check_tracks(pred, true, mask, fps, len(labels))
    for code in aus or ():
        if f"AU{code:02d}" not in labels:
            raise KeyError(f"au_tracks_figure: AU{code} is not among the columns {list(labels)}")
    wanted = [f"AU{code:02d}" for code in (DEFAULT_TRACK_AUS if aus is None else aus)]
    columns_shown = [list(labels).index(label) for label in wanted if label in labels]
    if aus is None and not columns_shown:  # not AUs: the first columns
        columns_shown = list(range(min(len(labels), 2 * MAX_TRACK_ROWS)))
    codes = tuple(columns_shown)
    if not codes:
        raise ValueError(f"au_tracks_figure: aus must name at least one of the columns {list(labels)}")
    columns = math.ceil(len(codes) / MAX_TRACK_ROWS)
    rows = math.ceil(len(codes) / columns)
    figure = _new_figure(width=6.5 * columns, height=1.3 * rows + 1.0)
    grid = figure.subplots(rows, columns, sharex=True, squeeze=False)
    seconds = np.arange(len(valid)) / fps
    target_on_valid = np.where(valid[:, None], true_array, np.nan)
    runs = _invalid_runs(valid)
    for position in range(rows * columns):
        panel = grid[position % rows, position // rows]  # AUs run down the columns
        if position >= len(codes):
            panel.set_visible(False)
            continue
        au = codes[position]
        for start, stop in runs:
            panel.axvspan((start - 0.5) / fps, (stop - 0.5) / fps, **_INVALID_SHADE)
        panel.plot(seconds, target_on_valid[:, au], color="black", linewidth=1.0, label="OpenFace")
        panel.plot(seconds, pred_array[:, au], color=PREDICTOR_COLORS["model"], linewidth=1.0, label="predicted")
        panel.set_ylim(*_track_limits(pred_array[:, au], target_on_valid[:, au]))
        name = _AU_NAMES.get(labels[au])
        panel.set_ylabel(f"{labels[au]}\n{name}" if name else labels[au], fontsize=8)
        panel.tick_params(labelsize=8)
        panel.grid(alpha=0.3)
    for panel in grid[-1]:  # shared x: tick labels on the bottom row only, so the label there too
        if panel.get_visible():
            panel.set_xlabel("time (s)", fontsize=9)
    handles, names = grid[0, 0].get_legend_handles_labels()
    if runs:
        handles.append(grid[0, 0].patches[0])
        names.append("invalid frames")
    figure.legend(handles, names, loc="outside lower center", ncols=len(handles), fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10, x=0.02, ha="left")
    return figure


def figure_to_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write the figure as PNG to ``path`` (parent folders created, written atomically); returns the path."""
    return write_png(figure_to_png(figure, dpi), path)


def write_png(png: bytes, path: str | Path) -> Path:
    """Write already rendered PNG bytes to ``path`` (parent folders created); returns the path.

    The file is written atomically (:func:`cause_pl.media.atomic.atomic_output`): a failed write
    leaves the previous file at ``path`` untouched.
    """
    with atomic_output(path) as temporary:
        temporary.write_bytes(png)
    return Path(path)


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _values_and_errors(estimates: Sequence[Estimate]) -> tuple[np.ndarray, np.ndarray]:
    """Bar heights and asymmetric error lengths (2, N); NaN intervals become no error bar."""
    values = np.array([estimate.value for estimate in estimates], dtype=float)
    low = values - np.array([estimate.ci_low for estimate in estimates], dtype=float)
    high = np.array([estimate.ci_high for estimate in estimates], dtype=float) - values
    return values, np.nan_to_num(np.stack([low, high]), nan=0.0)


def _format_estimate(estimate: Estimate) -> str:
    if math.isnan(estimate.ci_low) or math.isnan(estimate.ci_high):
        return f"{estimate.value:.3f}"
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def _au_tick_label(label: str) -> str:
    name = _AU_NAMES.get(label)
    return f"{label} {name}" if name else label


def _check_tracks(
    pred: ArrayLike, true: ArrayLike, mask: ArrayLike, fps: float, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred_array = np.asarray(pred, dtype=np.float64)
    true_array = np.asarray(true, dtype=np.float64)
    valid = np.asarray(mask)
    if pred_array.ndim != 2 or pred_array.shape[1] != width or pred_array.shape[0] == 0:
        raise ValueError(f"au_tracks_figure: pred must be (frames >= 1, {width}), got shape {pred_array.shape}")
    if true_array.shape != pred_array.shape:
        raise ValueError(
            f"au_tracks_figure: true has shape {true_array.shape}, pred has {pred_array.shape}; they must match"
        )
    if valid.shape != pred_array.shape[:1] or valid.dtype != np.bool_:
        raise ValueError(
            f"au_tracks_figure: mask must be bool of shape {pred_array.shape[:1]}, got {valid.dtype} {valid.shape}"
        )
    if not fps > 0:
        raise ValueError(f"au_tracks_figure: fps must be positive, got {fps}")
    return pred_array, true_array, valid


def _invalid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Half-open frame ranges ``[start, stop)`` of consecutive invalid frames."""
    edges = np.diff(np.concatenate([[0], (~valid).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _track_limits(*tracks: np.ndarray) -> tuple[float, float]:
    """From the scale's floor to a little above the highest value (at least 1), so low tracks stay readable."""
    finite = np.concatenate([track[np.isfinite(track)] for track in tracks])
    highest = max(1.0, float(finite.max())) if finite.size else AU_MAX
    lowest = min(AU_MIN, float(finite.min())) if finite.size else AU_MIN
    return lowest - 0.05 * (highest - lowest), highest * 1.08
