"""Put OpenFace rows on a time line and resample them onto feature frames (docs/design.md, "Frames and time").

A row's time comes from its timestamp, or from its frame number and the track's frame rate; feature
frame ``i`` is at ``i / fps`` seconds. A frame within ``SNAP`` seconds of a row takes that row as it is
(so a 25 fps track on 25 fps features maps row ``frame = i + 1`` to frame ``i``, bit for bit); any
other frame is interpolated linearly between the rows either side of it, and is valid only when both
are valid and at most ``MAX_GAP`` track frame periods apart. Invalid frames carry zero AUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SNAP = 5e-4
"""Seconds: OpenFace writes timestamps to the millisecond, so a row this close to a frame is on it."""
MAX_GAP = 1.5
"""Rows further apart than this many track frame periods have a gap between them (missing rows)."""


@dataclass(frozen=True, eq=False)
class Timeline:
    """Each row's time in seconds (strictly increasing) and the track's frame rate."""

    times: np.ndarray  # float64 (n,)
    rate: float

    @property
    def duration(self) -> float:
        """Seconds the track covers: up to its last row, plus that row's frame period."""
        return float(self.times[-1]) + 1.0 / self.rate


def positive_rate(name: str, value: float) -> float:
    """``value`` as a float, which must be finite and > 0."""
    rate = float(value)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return rate


def timeline(
    frames: np.ndarray | None, timestamps: np.ndarray, fps: float, source_fps: float | None = None
) -> Timeline:
    """Row times from frame numbers (1-based, increasing) or, where ``frames`` is None, from ``timestamps``.

    With frame numbers: ``(frame - 1) / source_fps`` when ``source_fps`` is given, else the
    timestamps when they strictly increase, else ``(frame - 1) / fps`` (the features' rate is
    assumed). The rate is ``source_fps``, else read from the timestamps (median spacing per frame).
    """
    rate = None if source_fps is None else positive_rate("source_fps", source_fps)
    if frames is None:
        spacing = np.diff(timestamps)
        return Timeline(timestamps, rate or (1.0 / float(np.median(spacing)) if spacing.size else fps))
    if rate is not None:
        return Timeline((frames - 1) / rate, rate)
    if frames.size > 1 and (np.diff(timestamps) > 0).all():
        return Timeline(timestamps, 1.0 / float(np.median(np.diff(timestamps) / np.diff(frames))))
    return Timeline((frames - 1) / fps, fps)


def resample(
    line: Timeline, aus: np.ndarray, valid: np.ndarray, num_frames: int, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows at ``line.times`` onto frames ``0 .. m-1`` at ``i / fps``, ``m`` = frames up to the last row.

    ``m`` is at most ``num_frames``. Returns ``(aus float32 (m, 17), valid bool (m,))``.
    """
    times = line.times
    count = min(num_frames, max(0, math.floor((float(times[-1]) + SNAP) * fps) + 1))
    target = np.arange(count) / fps
    after = np.searchsorted(times, target)  # first row at or after each frame
    low = np.clip(after - 1, 0, len(times) - 1)
    high = np.clip(after, 0, len(times) - 1)
    span = times[high] - times[low]
    weight = np.divide(target - times[low], span, out=np.zeros(count), where=span > 0)
    values = aus[low] * (1.0 - weight)[:, None] + aus[high] * weight[:, None]
    ok = (after > 0) & (after < len(times)) & valid[low] & valid[high] & (span <= MAX_GAP / line.rate)
    nearest = np.where(np.abs(times[high] - target) <= np.abs(times[low] - target), high, low)
    snapped = np.abs(times[nearest] - target) <= SNAP
    values[snapped] = aus[nearest[snapped]]
    ok[snapped] = valid[nearest[snapped]]
    values[~ok] = 0.0
    return values.astype(np.float32), ok
