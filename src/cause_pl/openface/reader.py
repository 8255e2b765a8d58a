"""Read OpenFace 2 CSVs: per-frame AU intensities (video) and per-face AUs + landmarks (image).

Two tools write these files. FeatureExtraction (video) starts its header with
``frame, face_id, timestamp, confidence, success``; FaceLandmarkImg (image) with ``face, confidence``.
Old Windows builds separate cells with ``", "`` and newer builds with ``","``, so cells are split
on ``,`` and stripped (``openface_table``, which converts only the columns used here). Optional
columns (gaze, pose, landmarks, AU presence) may appear anywhere; the 17 intensity columns are
found by name and returned in ``AU_COLUMNS`` order.

The frame pairing contract (docs/design.md, "Frames and time"): mel frame ``i`` pairs with OpenFace ``frame = i + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cause_pl.au import AU_COLUMNS, NUM_AUS
from cause_pl.openface.table import IMAGE, VIDEO, OpenFaceError, Table, read_table

NUM_LANDMARKS = 68
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
    frames: np.ndarray  # int64 (n,), OpenFace's 1-based frame numbers (image variant: 1..n)
    timestamps: np.ndarray  # float64 (n,), seconds (zeros where the CSV has no timestamp column)
    confidence: np.ndarray  # float32 (n,)
    face_id: int
    path: str

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.frames.shape[0])

    @property
    def last_frame(self) -> int:
        """Highest frame number, i.e. the length of the video as far as OpenFace saw it."""
        return int(self.frames[-1])


def _integers(path: str, name: str, values: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``values`` of column ``name`` as int64, rejecting fractional numbers."""
    fractional = np.flatnonzero(values != np.round(values))
    if fractional.size:
        row = int(fractional[0])
        raise OpenFaceError(f"{path}: column {name!r}, line {lines[row]}: {float(values[row]):g} is not an integer")
    return values.astype(np.int64)


def _choose_face(path: str, ids: np.ndarray, confidence: np.ndarray, requested: int | None) -> int:
    """The requested face, or the one in most rows (ties: higher mean confidence, then lower id)."""
    faces, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if requested is not None:
        if requested not in faces:
            raise OpenFaceError(f"{path}: no rows for face {requested}; available face ids: {faces.tolist()}")
        return int(requested)
    mean_confidence = np.bincount(inverse, weights=confidence) / counts
    best = np.lexsort((faces, -mean_confidence, -counts))[0]
    return int(faces[best])


@dataclass(frozen=True, eq=False)
class _FaceRows:
    """The rows of the chosen face: each requested column (plus ``confidence``) and their line numbers."""

    face_id: int
    columns: dict[str, np.ndarray]
    lines: np.ndarray


def _face_rows(
    table: Table, columns: Sequence[str], face_id: int | None, non_finite_ok: Sequence[str] = ()
) -> _FaceRows:
    """Parse the face column, ``confidence`` and ``columns`` at once; keep the chosen face's rows.

    Cells of ``non_finite_ok`` columns may be NaN or inf (the caller masks them); others may not.
    """
    names = (table.variant.face_column, "confidence", *columns)
    values = table.numbers(names, non_finite_ok)
    lines = np.asarray(table.lines)
    ids = _integers(table.path, names[0], values[:, 0], lines)
    chosen = _choose_face(table.path, ids, values[:, 1], face_id)
    selected = ids == chosen
    return _FaceRows(chosen, dict(zip(names[1:], values[selected, 1:].T, strict=True)), lines[selected])


def read_openface_csv(path: str | Path, face_id: int | None = None, min_confidence: float = 0.7) -> OpenFaceTrack:
    """Read the AU intensities of one face from an OpenFace 2 CSV (video or image variant).

    ``face_id`` selects a face (``face_id`` column for video, ``face`` for image); ``None`` picks
    the face in the most rows. Rows with ``success == 0`` or ``confidence < min_confidence`` are
    marked invalid, and so are rows with a NaN or infinite AU intensity (their AUs become 0, so no
    NaN reaches a shard); any other non-finite or non-numeric cell is an OpenFaceError.
    """
    table = read_table(path)
    missing_aus = table.missing(AU_COLUMNS)
    if missing_aus:
        raise OpenFaceError(f"{table.path}: missing AU intensity column(s) {missing_aus}")
    is_video = table.variant is VIDEO
    optional = ("timestamp",) if "timestamp" in table.columns else ()
    face = _face_rows(table, (*AU_COLUMNS, *(("frame", "success", *optional) if is_video else ())), face_id, AU_COLUMNS)
    confidence = face.columns["confidence"]
    count = confidence.shape[0]
    if is_video:
        frames = _integers(table.path, "frame", face.columns["frame"], face.lines)
        _check_frames(table.path, face, frames)
        success = face.columns["success"] == 1
    else:
        frames = np.arange(1, count + 1, dtype=np.int64)
        success = np.ones(count, dtype=bool)
    aus = np.stack([face.columns[name] for name in AU_COLUMNS], axis=1).astype(np.float32)
    finite = np.isfinite(aus).all(axis=1)
    aus[~finite] = 0.0
    return OpenFaceTrack(
        aus=aus,
        valid=success & (confidence >= min_confidence) & finite,
        frames=frames,
        timestamps=face.columns.get("timestamp", np.zeros(count)).astype(np.float64),
        confidence=confidence.astype(np.float32),
        face_id=face.face_id,
        path=table.path,
    )


def _check_frames(path: str, face: _FaceRows, frames: np.ndarray) -> None:
    """Frame numbers must be 1-based and strictly increase within one face."""
    if frames[0] < 1:
        raise OpenFaceError(
            f"{path}: face {face.face_id}, line {face.lines[0]}: frame numbers are 1-based, found {frames[0]}"
        )
    steps = np.flatnonzero(np.diff(frames) <= 0)
    if steps.size:
        at = int(steps[0]) + 1
        raise OpenFaceError(
            f"{path}: face {face.face_id}, line {face.lines[at]}: frame numbers must strictly increase, "
            f"but frame {frames[at]} follows frame {frames[at - 1]}"
        )


def landmarks_2d(path: str | Path, face_id: int | None = None) -> np.ndarray | None:
    """The 68 2-D landmarks (x, y) in pixels of one face of a FaceLandmarkImg CSV, float32 (68, 2).

    Returns None when the CSV has no ``x_0..x_67, y_0..y_67`` columns. Used to crop face images.
    """
    table = read_table(path)
    if table.variant is not IMAGE:
        raise OpenFaceError(f"{table.path}: landmarks_2d reads the {IMAGE.name} variant, not {table.variant.name}")
    columns = () if table.missing(LANDMARK_COLUMNS) else LANDMARK_COLUMNS
    face = _face_rows(table, columns, face_id)
    if not columns:
        return None
    if face.lines.shape[0] != 1:
        rows = face.lines.shape[0]
        raise OpenFaceError(f"{table.path}: face {face.face_id} appears in {rows} rows, expected one")
    row = np.array([face.columns[name][0] for name in columns], dtype=np.float32)
    return row.reshape(2, NUM_LANDMARKS).T


def align_to_frames(track: OpenFaceTrack, num_frames: int, max_mismatch: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pair a track with ``num_frames`` feature frames: frame ``i`` takes OpenFace ``frame = i + 1``.

    Both streams are trimmed to the shorter one. Returns ``(aus float32 (m, 17), valid bool (m,))``;
    frames the CSV skips are invalid with zero AUs. Raises AlignmentError when the lengths differ
    by more than ``max_mismatch`` frames, since such a pair is misaligned.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    last = track.last_frame
    if abs(num_frames - last) > max_mismatch:
        raise AlignmentError(
            f"{track.path}: OpenFace track has {last} frames but the features have {num_frames} "
            f"(difference over {max_mismatch}): the pair is misaligned"
        )
    length = min(num_frames, last)
    aus = np.zeros((length, NUM_AUS), dtype=np.float32)
    valid = np.zeros(length, dtype=bool)
    kept = track.frames <= length
    positions = track.frames[kept] - 1
    aus[positions] = track.aus[kept]
    valid[positions] = track.valid[kept]
    return aus, valid
