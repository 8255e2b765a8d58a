"""Read OpenFace 2 CSVs: per-frame AU intensities (video) and per-face AUs + landmarks (image).

Two tools write these files. FeatureExtraction (video) starts its header with
``frame, face_id, timestamp, confidence, success``; FaceLandmarkImg (image) with ``face, confidence``.
Old Windows builds separate cells with ``", "`` and newer builds with ``","``, so every cell is
split on ``,`` and stripped. Optional columns (gaze, pose, landmarks, AU presence) may appear
anywhere; the 17 intensity columns are found by name and returned in ``AU_COLUMNS`` order.

The frame pairing contract (DESIGN.md section 3): mel frame ``i`` pairs with OpenFace ``frame = i + 1``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Sequence

import numpy as np

from cause_pl.au import AU_COLUMNS, NUM_AUS

NUM_LANDMARKS = 68
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(NUM_LANDMARKS)) + tuple(
    f"y_{i}" for i in range(NUM_LANDMARKS)
)


class OpenFaceError(ValueError):
    """An OpenFace CSV that cannot be used; the message names the file and the problem."""


class AlignmentError(OpenFaceError):
    """An OpenFace track and a feature sequence whose lengths disagree by more than the tolerance."""


@dataclass(frozen=True)
class _Variant:
    """Which OpenFace tool wrote the file, and the columns that tool always writes."""

    name: str
    face_column: str
    required: tuple[str, ...]


_VIDEO = _Variant("video (FeatureExtraction)", "face_id", ("frame", "face_id", "confidence", "success"))
_IMAGE = _Variant("image (FaceLandmarkImg)", "face", ("face", "confidence"))


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


@dataclass(frozen=True, eq=False)
class _Table:
    """A parsed CSV: column positions by stripped name, raw data rows, each row's line number."""

    path: str
    variant: _Variant
    columns: dict[str, int]
    rows: list[list[str]]
    lines: list[int]

    def missing(self, names: Sequence[str]) -> list[str]:
        """The columns of ``names`` the header lacks."""
        return [name for name in names if name not in self.columns]

    def numbers(self, names: Sequence[str]) -> np.ndarray:
        """float64 (rows, len(names)) of the named columns, converted in one numpy call.

        Raises OpenFaceError naming the column and line of the first non-numeric or non-finite cell.
        """
        indices = [self.columns[name] for name in names]
        pick = itemgetter(*indices)
        cells = [pick(row) for row in self.rows]
        try:
            values = np.array(cells, dtype=np.float64).reshape(len(self.rows), len(indices))
        except ValueError:
            values = None
        if values is None or not np.isfinite(values).all():
            self._raise_first_bad_cell(names, indices)
        return values

    def _raise_first_bad_cell(self, names: Sequence[str], indices: Sequence[int]) -> None:
        """Slow path, only on error: find the offending cell and say where it is."""
        for row, line in zip(self.rows, self.lines):
            for name, index in zip(names, indices):
                cell = row[index]
                try:
                    number = float(cell)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise OpenFaceError(
                        f"{self.path}: column {name!r}, line {line}: {cell.strip()!r} is not a finite number"
                    )
        raise AssertionError("a numeric conversion failed but no bad cell was found")


def _read_table(path: str | Path) -> _Table:
    """Read ``path``, detect the variant, check required columns, row widths and that data exists."""
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(name.strip() for name in next(reader, ()))
            numbered = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OpenFaceError(f"{path}: cannot read OpenFace CSV: {error}") from error
    if not header:
        raise OpenFaceError(f"{path}: empty file, no OpenFace header")
    variant = _detect_variant(path, header)
    missing = [name for name in variant.required if name not in header]
    if missing:
        raise OpenFaceError(f"{path}: missing required column(s) {missing} for the {variant.name} variant")
    if not numbered:
        raise OpenFaceError(f"{path}: no data rows (OpenFace found no face)")
    for line, row in numbered:
        if len(row) != len(header):
            raise OpenFaceError(f"{path}: line {line} has {len(row)} cells, the header has {len(header)}")
    lines, rows = (list(part) for part in zip(*numbered))
    columns = {name: position for position, name in enumerate(header)}
    return _Table(path, variant, columns, rows, lines)


def _detect_variant(path: str, header: Sequence[str]) -> _Variant:
    if "frame" in header or "face_id" in header:
        return _VIDEO
    if "face" in header:
        return _IMAGE
    raise OpenFaceError(
        f"{path}: not an OpenFace CSV: the header has neither 'frame'/'face_id' ({_VIDEO.name}) "
        f"nor 'face' ({_IMAGE.name}); it starts {list(header[:5])}"
    )


def _integers(path: str, name: str, values: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``values`` of column ``name`` as int64, rejecting fractional numbers."""
    fractional = np.flatnonzero(values != np.round(values))
    if fractional.size:
        row = int(fractional[0])
        raise OpenFaceError(
            f"{path}: column {name!r}, line {lines[row]}: {float(values[row]):g} is not an integer"
        )
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


def _face_rows(table: _Table, columns: Sequence[str], face_id: int | None) -> _FaceRows:
    """Parse the face column, ``confidence`` and ``columns`` at once; keep the chosen face's rows."""
    names = (table.variant.face_column, "confidence", *columns)
    values = table.numbers(names)
    lines = np.asarray(table.lines)
    ids = _integers(table.path, names[0], values[:, 0], lines)
    chosen = _choose_face(table.path, ids, values[:, 1], face_id)
    selected = ids == chosen
    return _FaceRows(chosen, dict(zip(names[1:], values[selected, 1:].T)), lines[selected])


def read_openface_csv(
    path: str | Path, face_id: int | None = None, min_confidence: float = 0.7
) -> OpenFaceTrack:
    """Read the AU intensities of one face from an OpenFace 2 CSV (video or image variant).

    ``face_id`` selects a face (``face_id`` column for video, ``face`` for image); ``None`` picks
    the face in the most rows. Rows with ``success == 0`` or ``confidence < min_confidence`` are
    marked invalid.
    """
    table = _read_table(path)
    missing_aus = table.missing(AU_COLUMNS)
    if missing_aus:
        raise OpenFaceError(f"{table.path}: missing AU intensity column(s) {missing_aus}")
    is_video = table.variant is _VIDEO
    optional = ("timestamp",) if "timestamp" in table.columns else ()
    face = _face_rows(table, (*AU_COLUMNS, *(("frame", "success", *optional) if is_video else ())), face_id)
    confidence = face.columns["confidence"]
    count = confidence.shape[0]
    if is_video:
        frames = _integers(table.path, "frame", face.columns["frame"], face.lines)
        _check_frames(table.path, face, frames)
        success = face.columns["success"] == 1
    else:
        frames = np.arange(1, count + 1, dtype=np.int64)
        success = np.ones(count, dtype=bool)
    return OpenFaceTrack(
        aus=np.stack([face.columns[name] for name in AU_COLUMNS], axis=1).astype(np.float32),
        valid=success & (confidence >= min_confidence),
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
    table = _read_table(path)
    if table.variant is not _IMAGE:
        raise OpenFaceError(
            f"{table.path}: landmarks_2d reads the {_IMAGE.name} variant, not {table.variant.name}"
        )
    columns = () if table.missing(LANDMARK_COLUMNS) else LANDMARK_COLUMNS
    face = _face_rows(table, columns, face_id)
    if not columns:
        return None
    if face.lines.shape[0] != 1:
        rows = face.lines.shape[0]
        raise OpenFaceError(f"{table.path}: face {face.face_id} appears in {rows} rows, expected one")
    row = np.array([face.columns[name][0] for name in columns], dtype=np.float32)
    return row.reshape(2, NUM_LANDMARKS).T


def align_to_frames(
    track: OpenFaceTrack, num_frames: int, max_mismatch: int = 2
) -> tuple[np.ndarray, np.ndarray]:
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
