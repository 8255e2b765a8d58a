"""Read OpenFace 2 CSVs: per-frame AU intensities (video) and per-face AUs + landmarks (image).

Two tools write these files. FeatureExtraction and FaceLandmarkVidMulti (video) start their header
with ``frame, face_id, timestamp, confidence, success`` (OpenFace 2.0.0: no ``face_id``, one face);
FaceLandmarkImg (image) with ``face, confidence``. Cells are split on ``,`` and stripped, whatever the
spacing (``table``, which converts only the columns used here). Optional columns (gaze, pose,
landmarks, AU presence) may appear anywhere; the 17 intensity columns are found by name and returned
in ``AU_COLUMNS`` order.

Alignment to mel frames goes by time (docs/design.md, "Frames and time"; ``resample``): at 25 fps
mel frame ``i`` takes OpenFace ``frame = i + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cause_pl.au import AU_COLUMNS
from cause_pl.openface.resample import positive_rate, resample, timeline
from cause_pl.openface.table import IMAGE, VIDEO, OpenFaceError, Table, read_table

NUM_LANDMARKS = 68
MIN_CONFIDENCE = 0.7
"""OpenFace's landmark confidence below which a row is not trusted."""
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(NUM_LANDMARKS)) + tuple(
    f"y_{i}" for i in range(NUM_LANDMARKS)
)


class AlignmentError(OpenFaceError):
    """An OpenFace track and a feature sequence whose lengths disagree by more than the tolerance."""


@dataclass(frozen=True, eq=False)
class OpenFaceTrack:
    """The rows of one face: AU intensities (0..5, ``AU_COLUMNS`` order) and their validity.

    ``valid`` is False where OpenFace failed (``success == 0``) or was unsure (low confidence);
    such rows carry forced or smoothed values that are not true zeros and must be masked out.
    """

    aus: np.ndarray  # float32 (n, 17)
    valid: np.ndarray  # bool (n,)
    frames: np.ndarray  # int64 (n,), OpenFace's 1-based frame numbers as written (image variant: 1..n)
    timestamps: np.ndarray  # float64 (n,), seconds (zeros where the CSV has no timestamp column)
    confidence: np.ndarray  # float32 (n,)
    face_id: int
    path: str
    by_timestamp: bool = False  # the frame numbers do not order the rows (e.g. all 0): timestamps do

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.frames.shape[0])

    @property
    def last_frame(self) -> int:
        """Frame number of the last row: the video length as OpenFace saw it (unless ``by_timestamp``)."""
        return int(self.frames[-1])


def _integers(path: str, name: str, values: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``values`` of column ``name`` as int64, rejecting fractional numbers."""
    fractional = np.flatnonzero(values != np.round(values))
    if fractional.size:
        row = int(fractional[0])
        raise OpenFaceError(f"{path}: column {name!r}, line {lines[row]}: {float(values[row]):g} is not an integer")
    return values.astype(np.int64)


def _choose_face(path: str, ids: np.ndarray, tracked: np.ndarray, confidence: np.ndarray, requested: int | None) -> int:
    """The requested face, or the one tracked in most rows (ties: more rows, higher mean confidence, lower id)."""
    faces, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if requested is not None:
        if requested not in faces:
            raise OpenFaceError(f"{path}: no rows for face {requested}; available face ids: {faces.tolist()}")
        return int(requested)
    tracked_counts = np.bincount(inverse, weights=tracked)
    mean_confidence = np.bincount(inverse, weights=confidence) / counts
    best = np.lexsort((faces, -mean_confidence, -counts, -tracked_counts))[0]
    return int(faces[best])


@dataclass(frozen=True, eq=False)
class _FaceRows:
    """The rows of the chosen face: each requested column (plus ``confidence``), tracking and line numbers."""

    face_id: int
    columns: dict[str, np.ndarray]
    tracked: np.ndarray
    lines: np.ndarray


def _face_rows(
    table: Table, columns: Sequence[str], face_id: int | None, min_confidence: float, non_finite_ok: Sequence[str] = ()
) -> _FaceRows:
    """Parse the face column, ``confidence``, ``success`` (video) and ``columns`` at once; keep one face's rows.

    A row is tracked when ``success == 1`` (video), ``confidence >= min_confidence`` and its
    ``non_finite_ok`` cells (which may be NaN or inf; others may not) are finite. A video CSV without
    a ``face_id`` column (OpenFace 2.0.0) holds one face, id 0.
    """
    has_ids = table.variant.face_column in table.columns
    status = ("confidence", *(("success",) if table.variant is VIDEO else ()))
    names = (*((table.variant.face_column,) if has_ids else ()), *status, *columns)
    values = dict(zip(names, table.numbers(names, non_finite_ok).T, strict=True))
    lines = np.asarray(table.lines)
    ids = _integers(table.path, names[0], values[names[0]], lines) if has_ids else np.zeros(len(lines), np.int64)
    tracked = (values["confidence"] >= min_confidence) & np.isfinite([values[name] for name in non_finite_ok]).all(0)
    if "success" in values:
        tracked &= values["success"] == 1
    chosen = _choose_face(table.path, ids, tracked, values["confidence"], face_id)
    selected = ids == chosen
    kept = {name: values[name][selected] for name in ("confidence", *columns)}
    return _FaceRows(chosen, kept, tracked[selected], lines[selected])


def read_openface_csv(
    path: str | Path, face_id: int | None = None, min_confidence: float = MIN_CONFIDENCE, *, strict: bool = False
) -> OpenFaceTrack:
    """Read the AU intensities of one face from an OpenFace 2 CSV (video or image variant).

    ``face_id`` selects a face (``face_id`` column for video, ``face`` for image); ``None`` picks
    the face tracked in the most rows. Rows with ``success == 0`` or ``confidence < min_confidence``
    are marked invalid, and so are rows with a NaN or infinite AU intensity (their AUs become 0, so no
    NaN reaches a shard); any other non-finite or non-numeric cell is an OpenFaceError. Rows are in
    frame order, or in timestamp order where the frame numbers do not order them. A truncated last
    row is dropped with a warning, or raises OpenFaceError when ``strict``.
    """
    table = read_table(path, strict)
    missing_aus = table.missing(AU_COLUMNS)
    if missing_aus:
        raise OpenFaceError(f"{table.path}: missing AU intensity column(s) {missing_aus}")
    is_video = table.variant is VIDEO
    timed = is_video and "timestamp" in table.columns
    face = _face_rows(
        table,
        (*AU_COLUMNS, *(("frame",) if is_video else ()), *(("timestamp",) if timed else ())),
        face_id,
        min_confidence,
        AU_COLUMNS,
    )
    count = face.lines.shape[0]
    timestamps = face.columns["timestamp"] if timed else np.zeros(count)
    if is_video:
        frames = _integers(table.path, "frame", face.columns["frame"], face.lines)
        order, by_timestamp = _row_order(table, face, frames, timestamps if timed else None)
    else:
        frames, order, by_timestamp = np.arange(1, count + 1, dtype=np.int64), np.arange(count), False
    aus = np.stack([face.columns[name] for name in AU_COLUMNS], axis=1).astype(np.float32)
    aus[~np.isfinite(aus).all(axis=1)] = 0.0
    return OpenFaceTrack(
        aus=aus[order],
        valid=face.tracked[order],
        frames=frames[order],
        timestamps=timestamps[order].astype(np.float64),
        confidence=face.columns["confidence"][order].astype(np.float32),
        face_id=face.face_id,
        path=table.path,
        by_timestamp=by_timestamp,
    )


def _row_order(
    table: Table, face: _FaceRows, frames: np.ndarray, timestamps: np.ndarray | None
) -> tuple[np.ndarray, bool]:
    """The rows in time order, and whether that order comes from the timestamps.

    Frame numbers order the rows when they are 1-based and strictly increase within the face; else
    (e.g. stuck at 0) strictly increasing timestamps (after sorting) do; else the file is refused.
    """
    steps = np.flatnonzero(np.diff(frames) <= 0)
    if frames[0] >= 1 and not steps.size:
        return np.arange(frames.shape[0]), False
    at = int(steps[0]) + 1 if steps.size else 0
    problem = (
        f"frame {frames[at]} follows frame {frames[at - 1]}" if at else f"frame numbers are 1-based, found {frames[0]}"
    )
    where = f"{table.path}: face {face.face_id}, line {face.lines[at]}"
    if timestamps is None:
        raise OpenFaceError(f"{where}: frame numbers must strictly increase from 1, but {problem}")
    order = np.argsort(timestamps, kind="stable")
    repeats = np.flatnonzero(np.diff(timestamps[order]) <= 0)
    if repeats.size:
        row = order[int(repeats[0]) + 1]
        hint = "" if VIDEO.face_column in table.columns else f" (several faces, but no {VIDEO.face_column} column?)"
        raise OpenFaceError(
            f"{where}: neither frame numbers ({problem}) nor timestamps (line {face.lines[row]} repeats "
            f"{timestamps[row]:g} s) order the rows{hint}"
        )
    return order, True


def landmarks_2d(path: str | Path, face_id: int | None = None, *, strict: bool = False) -> np.ndarray | None:
    """The 68 2-D landmarks (x, y) in pixels of one face of a FaceLandmarkImg CSV, float32 (68, 2).

    Returns None when the CSV has no ``x_0..x_67, y_0..y_67`` columns. Used to crop face images.
    ``face_id=None`` picks the face ``read_openface_csv`` picks with its default ``min_confidence``.
    """
    table = read_table(path, strict)
    if table.variant is not IMAGE:
        raise OpenFaceError(f"{table.path}: landmarks_2d reads the {IMAGE.name} variant, not {table.variant.name}")
    columns = () if table.missing(LANDMARK_COLUMNS) else LANDMARK_COLUMNS
    face = _face_rows(table, columns, face_id, MIN_CONFIDENCE)
    if not columns:
        return None
    if face.lines.shape[0] != 1:
        rows = face.lines.shape[0]
        raise OpenFaceError(f"{table.path}: face {face.face_id} appears in {rows} rows, expected one")
    row = np.array([face.columns[name][0] for name in columns], dtype=np.float32)
    return row.reshape(2, NUM_LANDMARKS).T


def align_to_frames(
    track: OpenFaceTrack,
    num_frames: int,
    max_mismatch: float = 2,
    *,
    fps: float = 25.0,
    source_fps: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a track onto ``num_frames`` feature frames at ``fps`` (frame ``i`` at ``i / fps`` seconds).

    Row times come from the timestamps, or from the frame numbers at ``source_fps`` when given; the
    track's rate is ``source_fps`` or read from the timestamps (see :mod:`cause_pl.openface.resample`).
    A 25 fps track on 25 fps features maps row ``frame = i + 1`` to frame ``i`` exactly. Returns
    ``(aus float32 (m, 17), valid bool (m,))`` for the frames up to the track's last row (at most
    ``num_frames``); frames without tracked rows on both sides are invalid with zero AUs. Raises
    AlignmentError when the durations differ by more than ``max_mismatch`` feature frames.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    fps = positive_rate("fps", fps)
    frames = None if track.by_timestamp else track.frames
    line = timeline(frames, track.timestamps, fps, source_fps)
    audio_seconds = num_frames / fps
    if abs(audio_seconds - line.duration) * fps > max_mismatch + 1e-6:
        raise AlignmentError(
            f"{track.path}: the OpenFace track covers {line.duration:.3f} s ({len(track)} rows at {line.rate:.4g} fps) "
            f"but the features cover {audio_seconds:.3f} s ({num_frames} frames at {fps:g} fps): more than "
            f"{max_mismatch:g} frames ({max_mismatch / fps:.3f} s) apart, the pair is misaligned"
        )
    return resample(line, track.aus, track.valid, num_frames, fps)
