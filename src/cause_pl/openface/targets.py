"""Per-frame targets of any kind (``cause_pl.targets.TargetSpec``) from a per-frame CSV, on mel frames.

AU targets (``spec.is_aus``: OpenFace's ``AUxx_r`` columns on the 0..5 scale) come from an OpenFace
FeatureExtraction CSV as the 17 AUs always have (``read_openface_csv``: face choice, ``success`` and
``confidence`` masking), keeping the spec's columns. Any other targets (emotion probabilities, ARKit
blendshapes, ...) come from any CSV with one row per video frame, a ``timestamp`` column in seconds
(OpenFace's ``" timestamp"`` spacing is fine) and the spec's columns, found by name; a row is valid
when all its target cells are finite (NaN marks a frame without a face). Both are placed on the mel
frames in time by ``align_to_frames``, so a CSV at any frame rate is resampled as OpenFace rows are.
Distribution targets are then renormalised to sum to 1; frames summing to ~0 are invalid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cause_pl.au import AU_COLUMNS
from cause_pl.openface.reader import OpenFaceTrack, align_to_frames, read_openface_csv
from cause_pl.openface.table import PER_FRAME, OpenFaceError, read_table
from cause_pl.targets import TargetSpec

TIME_COLUMN = "timestamp"
EPSILON = 1e-6
"""A distribution row whose probabilities sum to at most this is no distribution (an invalid frame)."""


def read_target_track(path: str | Path, spec: TargetSpec, *, strict: bool = False) -> OpenFaceTrack:
    """The rows of a per-frame CSV as a track of ``spec``'s columns (in spec order), timed by ``timestamp``.

    Raises OpenFaceError naming the file when a target column is missing, a cell is not a number
    (NaN and inf in target columns only invalidate their row) or the timestamps do not increase.
    """
    table = read_table(path, strict, PER_FRAME)
    missing = table.missing(spec.columns)
    if missing:
        raise OpenFaceError(f"{table.path}: missing target column(s) {missing}")
    values = table.numbers((TIME_COLUMN, *spec.columns), spec.columns)
    times, targets = values[:, 0], values[:, 1:]
    steps = np.flatnonzero(np.diff(times) <= 0)
    if steps.size:
        row = int(steps[0]) + 1
        raise OpenFaceError(
            f"{table.path}: line {table.lines[row]}: timestamp {times[row]:g} s does not follow "
            f"{times[row - 1]:g} s; rows must be one per frame, in time order"
        )
    valid = np.isfinite(targets).all(axis=1)
    targets[~valid] = 0.0
    if spec.kind == "distribution":
        targets = np.clip(targets, 0.0, None)
        valid &= targets.sum(axis=1) > EPSILON
        targets[~valid] = 0.0
    count = len(times)
    return OpenFaceTrack(
        aus=targets.astype(np.float32),
        valid=valid,
        frames=np.arange(1, count + 1, dtype=np.int64),
        timestamps=times,
        confidence=np.ones(count, np.float32),
        face_id=0,
        path=table.path,
        by_timestamp=True,
    )


def normalise(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distribution rows scaled to sum to 1; rows summing to ~0 become invalid zeros."""
    sums = values.sum(axis=1, dtype=np.float64)
    valid = valid & (sums > EPSILON)
    scaled = np.divide(values, sums[:, None], out=np.zeros(values.shape), where=valid[:, None])
    return scaled.astype(np.float32), valid


def frame_targets(
    path: str | Path, spec: TargetSpec, num_frames: int, *, fps: float, min_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(targets float32 (m, spec.size), valid bool (m,))`` of ``path`` on ``num_frames`` mel frames at ``fps``.

    Raises OpenFaceError for an unusable CSV and AlignmentError (a subclass) for a duration mismatch.
    """
    if spec.is_aus:
        track = read_openface_csv(path, min_confidence=min_confidence)
        aus, valid = align_to_frames(track, num_frames, fps=fps)
        return aus[:, [AU_COLUMNS.index(column) for column in spec.columns]], valid
    values, valid = align_to_frames(read_target_track(path, spec), num_frames, fps=fps)
    return normalise(values, valid) if spec.kind == "distribution" else (values, valid)
