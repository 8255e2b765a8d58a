"""Write realistic OpenFace 2 CSVs for tests: FeatureExtraction (video) and FaceLandmarkImg (image).

Column layout follows OpenFace 2: identification columns first, then (optionally) gaze, head pose
and 2-D landmarks, then the 17 AU intensity columns ``AU01_r..AU45_r`` and the 18 presence columns
``AU01_c..AU45_c`` (presence includes ``AU28_c``, which has no intensity). Two spacing styles:

- ``"comma"``: newer builds, cells separated by ``,``, ``\\n`` line ends.
- ``"comma_space"``: old Windows builds, cells separated by ``", "`` (so header names carry a
  leading space), non-negative numbers padded with one more space (values carry one or two
  spaces), ``\\r\\n`` line ends.

Any other byte layout is a ``Layout`` (header and row separators, line end, BOM, final newline).

Numbers are written with ``repr`` (shortest exact round-trip), so a reader must reproduce the
arrays a test passed in exactly; ``as_openface`` rewrites a table as OpenFace itself prints it
(``OPENFACE_VERSIONS``: fixed decimals, and no ``face_id`` column before 2.2.0), to be written with
``OPENFACE_LAYOUT``. Tables can be edited before writing (``CsvTable.drop_columns``,
``CsvTable.set_cell``) to build broken files for error tests.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cause_pl.au import ACTION_UNITS, AU_COLUMNS, NUM_AUS

STYLES: tuple[str, ...] = ("comma", "comma_space")
NUM_LANDMARKS = 68
PRESENCE_COLUMNS: tuple[str, ...] = tuple(f"AU{code:02d}_c" for code in sorted({au.code for au in ACTION_UNITS} | {28}))
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(NUM_LANDMARKS)) + tuple(
    f"y_{i}" for i in range(NUM_LANDMARKS)
)
GAZE_POSE_COLUMNS: tuple[str, ...] = (
    *(f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz"),
    "gaze_angle_x",
    "gaze_angle_y",
    *(f"pose_{kind}{axis}" for kind in "TR" for axis in "xyz"),
)
VIDEO_ID_COLUMNS: tuple[str, ...] = ("frame", "face_id", "timestamp", "confidence", "success")
DEFAULT_CONFIDENCE = 0.98
PRESENCE_THRESHOLD = 1.0
"""An AU is written as present (``_c = 1``) when its intensity reaches this value."""


@dataclass(frozen=True)
class Layout:
    """The bytes around the cells of a CSV."""

    header_separator: str = ","
    row_separator: str = ","
    newline: str = "\n"
    bom: bool = False
    final_newline: bool = True
    pad: bool = False
    """Non-negative data cells get one leading space (old Windows builds)."""

    def render(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
        """The file's bytes."""
        padded = ([cell if cell.startswith("-") or not self.pad else f" {cell}" for cell in row] for row in rows)
        lines = [self.header_separator.join(header), *(self.row_separator.join(cells) for cells in padded)]
        text = self.newline.join(lines) + (self.newline if self.final_newline else "")
        return ("\ufeff" if self.bom else "").encode() + text.encode()


LAYOUTS: dict[str, Layout] = {
    "comma": Layout(),
    "comma_space": Layout(", ", ", ", "\r\n", pad=True),
}
OPENFACE_LAYOUT = Layout(", ", ", ")
"""How OpenFace 2 writes on Linux (``std::endl``; Windows builds end lines with CRLF)."""
OPENFACE_VERSIONS: tuple[str, ...] = ("2.0.0", "2.2.0")
OPENFACE_DECIMALS: dict[str, int] = {"timestamp": 3, "confidence": 2, **dict.fromkeys(AU_COLUMNS, 2)}
"""``std::setprecision`` of the columns a reader uses (AU presence: 1, success: 0)."""


@dataclass
class CsvTable:
    """A CSV in memory: column names and rows of already formatted cells (no padding)."""

    header: list[str]
    rows: list[list[str]]

    def drop_columns(self, *names: str) -> CsvTable:
        """A copy without the named columns (KeyError if one is absent)."""
        dropped = {self.header.index(name) for name in names}
        keep = [i for i in range(len(self.header)) if i not in dropped]
        return CsvTable([self.header[i] for i in keep], [[row[i] for i in keep] for row in self.rows])

    def set_cell(self, row: int, column: str, text: str) -> None:
        """Overwrite one cell of data row ``row`` (0-based) in place, e.g. with ``"abc"`` or ``"nan"``."""
        self.rows[row][self.header.index(column)] = text

    def write(self, path: str | Path, style: str | Layout = "comma") -> Path:
        """Write the table in ``style`` (a name of ``STYLES`` or a ``Layout``); creates parent folders."""
        if isinstance(style, str) and style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((LAYOUTS[style] if isinstance(style, str) else style).render(self.header, self.rows))
        return path


def as_openface(table: CsvTable, version: str = "2.2.0") -> CsvTable:
    """``table`` with its numbers printed as OpenFace ``version`` prints them (2.0.0: no ``face_id``)."""
    if version not in OPENFACE_VERSIONS:
        raise ValueError(f"version must be one of {OPENFACE_VERSIONS}, got {version!r}")
    decimals = {**OPENFACE_DECIMALS, **dict.fromkeys(PRESENCE_COLUMNS, 1)}
    formats = [decimals.get(name) for name in table.header]
    rows = [
        [cell if places is None else f"{float(cell):.{places}f}" for cell, places in zip(row, formats, strict=True)]
        for row in table.rows
    ]
    printed = CsvTable(list(table.header), rows)
    return printed.drop_columns("face_id") if version == "2.0.0" else printed


def _number(value: float) -> str:
    return repr(float(value))


def _au_cells(aus: np.ndarray) -> list[list[str]]:
    """Intensity then presence cells for each row of ``aus`` (n, 17); AU28 is never present."""
    present = {column: aus[:, i] >= PRESENCE_THRESHOLD for i, column in enumerate(AU_COLUMNS)}
    absent = np.zeros(len(aus), dtype=bool)
    presence = [present.get(column.replace("_c", "_r"), absent) for column in PRESENCE_COLUMNS]
    presence_rows = np.stack(presence, axis=1).astype(int)
    return [[*map(_number, values), *map(str, flags)] for values, flags in zip(aus, presence_rows, strict=True)]


def _gaze_pose_landmark_cells(rng: np.random.Generator, count: int) -> list[list[str]]:
    """Plausible gaze (rad), pose (mm, rad) and landmark (px) values, deterministic per ``rng``."""
    gaze = rng.normal(0.0, 0.2, size=(count, 8))
    translation = rng.normal((0.0, 0.0, 600.0), (20.0, 20.0, 50.0), size=(count, 3))
    rotation = rng.normal(0.0, 0.1, size=(count, 3))
    landmarks = rng.uniform(100.0, 400.0, size=(count, 2 * NUM_LANDMARKS))
    values = np.round(np.concatenate([gaze, translation, rotation, landmarks], axis=1), 3)
    return [list(map(_number, row)) for row in values]


def _check_aus(aus: np.ndarray, name: str) -> np.ndarray:
    aus = np.asarray(aus, dtype=np.float64)
    if aus.ndim != 2 or aus.shape[1] != NUM_AUS:
        raise ValueError(f"{name} must be shaped (n, {NUM_AUS}), got {aus.shape}")
    return aus


def _video_face_rows(
    face_id: int,
    aus: np.ndarray,
    success: np.ndarray | None,
    confidence: np.ndarray | None,
    frames: np.ndarray | None,
    fps: float,
    extras: list[list[str]],
) -> list[tuple[int, list[str]]]:
    """``(frame, cells)`` for each row of one face, with OpenFace's defaults filled in."""
    count = len(aus)
    frames = np.arange(1, count + 1) if frames is None else np.asarray(frames)
    success = np.ones(count, dtype=int) if success is None else np.asarray(success, dtype=int)
    confidence = np.full(count, DEFAULT_CONFIDENCE) if confidence is None else np.asarray(confidence)
    written_aus = np.where(success[:, None] == 1, aus, 0.0)
    identification = [
        [str(int(frame)), str(face_id), _number((frame - 1) / fps), _number(conf), str(ok)]
        for frame, conf, ok in zip(frames, confidence, success, strict=True)
    ]
    rows = zip(identification, extras, _au_cells(written_aus), strict=True)
    return [(int(frame), [*ids, *extra, *au]) for frame, (ids, extra, au) in zip(frames, rows, strict=True)]


def video_table(
    aus: np.ndarray | Sequence[np.ndarray],
    *,
    face_ids: int | Sequence[int] | None = None,
    success: np.ndarray | Sequence[np.ndarray | None] | None = None,
    confidence: np.ndarray | Sequence[np.ndarray | None] | None = None,
    frames: np.ndarray | Sequence[np.ndarray | None] | None = None,
    fps: float = 25.0,
    extra_columns: bool = True,
) -> CsvTable:
    """A FeatureExtraction table for one face (``aus`` (n, 17)) or several (a sequence of such).

    For several faces, ``success``/``confidence``/``frames`` are sequences with one entry per face
    (an entry may be None); for one face they are single arrays. Defaults: ``face_ids`` 0..k-1,
    ``frames`` 1..n, ``success`` all 1, ``confidence`` 0.98. Rows with ``success = 0`` get all AU
    values forced to 0, as OpenFace does. Timestamps are ``(frame - 1) / fps``. Rows of several
    faces are interleaved by frame number (ties in face order); each face keeps its own row
    order, so non-increasing ``frames`` stay in the file as given. ``extra_columns`` adds gaze,
    pose and 68 landmark columns between the identification and the AU columns.
    """
    single = isinstance(aus, np.ndarray)
    faces = [_check_aus(aus, "aus")] if single else [_check_aus(a, f"aus[{i}]") for i, a in enumerate(aus)]

    def per_face(value):
        if value is None:
            return [None] * len(faces)
        return [value] if single else list(value)

    if face_ids is None:
        face_ids = list(range(len(faces)))
    ids = [face_ids] if isinstance(face_ids, int) else list(face_ids)
    rng = np.random.default_rng(0)
    rows_per_face = [
        _video_face_rows(
            face_id,
            face_aus,
            face_success,
            face_confidence,
            face_frames,
            fps,
            _gaze_pose_landmark_cells(rng, len(face_aus)) if extra_columns else [[]] * len(face_aus),
        )
        for face_id, face_aus, face_success, face_confidence, face_frames in zip(
            ids, faces, per_face(success), per_face(confidence), per_face(frames), strict=True
        )
    ]
    merged = heapq.merge(*rows_per_face, key=lambda frame_and_cells: frame_and_cells[0])
    extra = GAZE_POSE_COLUMNS + LANDMARK_COLUMNS if extra_columns else ()
    header = [*VIDEO_ID_COLUMNS, *extra, *AU_COLUMNS, *PRESENCE_COLUMNS]
    return CsvTable(header, [cells for _, cells in merged])


def write_video_csv(
    path: str | Path, aus: np.ndarray | Sequence[np.ndarray], *, style: str = "comma", **options
) -> Path:
    """Write a FeatureExtraction CSV; ``options`` are those of ``video_table``."""
    return video_table(aus, **options).write(path, style)


def image_table(faces: Sequence[tuple[np.ndarray, float, np.ndarray | None]]) -> CsvTable:
    """A FaceLandmarkImg table, one row per ``(aus (17,), confidence, landmarks (68, 2) or None)``.

    Face ids are 0..k-1 in the given order. Landmark columns ``x_0..x_67, y_0..y_67`` are written
    when every face has landmarks and left out when none has (mixing is a ValueError).
    """
    with_landmarks = [landmarks is not None for _, _, landmarks in faces]
    if any(with_landmarks) and not all(with_landmarks):
        raise ValueError("either every face has landmarks or none has")
    aus = _check_aus(np.stack([np.asarray(face_aus) for face_aus, _, _ in faces]), "faces' aus")
    rows = []
    for face, ((_, conf, landmarks), au) in enumerate(zip(faces, _au_cells(aus), strict=True)):
        points = [] if landmarks is None else list(map(_number, np.asarray(landmarks).T.reshape(-1)))
        rows.append([str(face), _number(conf), *points, *au])
    header = ["face", "confidence", *(LANDMARK_COLUMNS if all(with_landmarks) else ()), *AU_COLUMNS]
    return CsvTable([*header, *PRESENCE_COLUMNS], rows)


def write_image_csv(
    path: str | Path, faces: Sequence[tuple[np.ndarray, float, np.ndarray | None]], *, style: str = "comma"
) -> Path:
    """Write a FaceLandmarkImg CSV; see ``image_table``."""
    return image_table(faces).write(path, style)
