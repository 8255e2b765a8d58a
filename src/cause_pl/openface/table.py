"""Parse an OpenFace 2 CSV into named columns, turning into numbers only the cells a reader asks for.

OpenFace 2.2 FeatureExtraction writes ~714 columns (gaze, 2-D and 3-D landmarks, pose, shape
parameters, AUs) of which a reader uses ~22; splitting every cell of every row into a Python string
was most of a data recipe's time. So a *plain* file (no quote, NUL or lone carriage return, no line as
long as ``csv.field_size_limit()``: everything OpenFace writes) stays one byte array: numpy finds its
line ends and counts each row's commas, a request finds its cells from the commas nearest to each row's
start or end, and cells that are plain decimals (all OpenFace writes) are parsed all at once, exactly
as ``float`` parses them; any other cell is converted by itself. Any other file goes through
``csv.reader``. For a plain file both ways give the same cells (the text between two commas, spaces
kept), numbers, line numbers and errors, so the result does not depend on the path.

Only requested cells are converted: text in a column nobody reads (say a landmark) is no error,
while every row must still have as many cells as the header. The one exception is the last data row
of a run that was killed while writing it (fewer cells, or a last cell that is not a number): it is
dropped with a warning, or an error when ``strict``.
"""

from __future__ import annotations

import codecs
import csv
import math
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import NoReturn

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cause_pl.openface.byte_numbers import COMMA, NEWLINE, RETURN, BitPositions, plain_decimals


class OpenFaceError(ValueError):
    """An OpenFace CSV that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Variant:
    """Which OpenFace tool wrote the file, and the columns that tool always writes."""

    name: str
    face_column: str
    required: tuple[str, ...]


VIDEO = Variant("video (FeatureExtraction)", "face_id", ("frame", "confidence", "success"))
"""OpenFace 2.0.0 writes no ``face_id`` column (one face, id 0); later versions do."""
IMAGE = Variant("image (FaceLandmarkImg)", "face", ("face", "confidence"))
PER_FRAME = Variant("per-frame", "", ("timestamp",))
"""Any per-frame CSV with a ``timestamp`` column in seconds (e.g. a face-emotion model's), read by name."""


@dataclass(frozen=True, eq=False)
class _CsvRows:
    """Data rows that ``csv.reader`` split into cells (files that are not plain)."""

    rows: list[list[str]]

    def widths(self) -> np.ndarray:
        """Cells per row."""
        return np.fromiter(map(len, self.rows), dtype=np.int64, count=len(self.rows))

    def pick(self, indices: Sequence[int]) -> Sequence[tuple[str, ...] | str]:
        """For each row, the cells at ``indices`` (as ``itemgetter`` gives them: one index, one bare cell)."""
        getter = itemgetter(*indices)
        return [getter(row) for row in self.rows]

    def floats(self, indices: Sequence[int]) -> np.ndarray | None:
        """float64 (rows, len(indices)) of the cells at ``indices`` as ``float`` reads them; None if one is not."""
        return _to_floats(self.pick(indices), (len(self.rows), len(indices)))

    def last_row(self) -> list[str]:
        """The cells of the last row."""
        return self.rows[-1]

    def without_last(self) -> _CsvRows:
        """These rows but the last."""
        return _CsvRows(self.rows[:-1])


@dataclass(frozen=True, eq=False)
class _PlainRows:
    """Data rows of a plain file, ``width`` cells each (a cell: the bytes between two commas), located with numpy.

    Row ``r`` is ``data[starts[r]:ends[r]]`` (its line end and ``\\r`` excluded); ``commas`` marks the commas
    of ``data``: a row's width is its count of commas plus one, and a cell is found from the commas nearest
    to the row's start or end (``_nearest_commas``), so most of a long row is never looked at again.
    """

    data: np.ndarray  # uint8: the file's bytes after any byte order mark
    starts: np.ndarray  # int64 (rows,)
    ends: np.ndarray  # int64 (rows,)
    commas: BitPositions
    width: int

    def widths(self) -> np.ndarray:
        """Cells per row."""
        return self.commas.count_before(self.ends) - self.commas.count_before(self.starts) + 1

    def pick(self, indices: Sequence[int]) -> Sequence[tuple[str, ...] | str]:
        """For each row, the cells at ``indices`` (as ``itemgetter`` gives them: one index, one bare cell)."""
        cells = self._texts(*self._spans(indices))
        if len(indices) == 1:
            return cells
        return [tuple(cells[at : at + len(indices)]) for at in range(0, len(cells), len(indices))]

    def floats(self, indices: Sequence[int]) -> np.ndarray | None:
        """float64 (rows, len(indices)) of the cells at ``indices`` as ``float`` reads them; None if one is not.

        Plain decimals (what OpenFace writes) are parsed all at once by ``plain_decimals``; other cells one by one.
        """
        starts, ends = self._spans(indices)
        values, plain = plain_decimals(self.data, starts, ends)
        odd = np.flatnonzero(~plain)
        if odd.size:
            converted = _to_floats(self._texts(starts[odd], ends[odd]), (odd.size,))
            if converted is None:
                return None
            values[odd] = converted
        return values.reshape(len(self.starts), len(indices))

    def last_row(self) -> list[str]:
        """The cells of the last row."""
        return self._texts(self.starts[-1:], self.ends[-1:])[0].split(",")

    def without_last(self) -> _PlainRows:
        """These rows but the last."""
        return _PlainRows(self.data, self.starts[:-1], self.ends[:-1], self.commas, self.width)

    def _spans(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of the cells at ``indices``, row after row (every row ``width`` cells wide).

        Cell ``c`` lies after comma ``c - 1`` and before comma ``c`` counted from the row's start, or from
        its end after comma ``d`` and before comma ``d - 1``, ``d = width - 1 - c``; the nearer end is used.
        """
        columns = np.asarray(indices, dtype=np.int64)
        back = self.width - 1 - columns
        front = columns <= back
        ahead = self._nearest_commas(int(columns[front].max(initial=-1)) + 1, from_end=False)
        behind = self._nearest_commas(int(back[~front].max(initial=-1)) + 1, from_end=True)
        starts = np.where(front, _columns(ahead, columns - 1), _columns(behind, back)) + 1
        ends = np.where(front, _columns(ahead, columns), _columns(behind, back - 1))
        starts = np.where(columns == 0, self.starts[:, None], starts)
        ends = np.where(columns == self.width - 1, self.ends[:, None], ends)
        return starts.ravel(), ends.ravel()

    def _nearest_commas(self, count: int, from_end: bool) -> np.ndarray:
        """(rows, count) positions of each row's first ``count`` commas (``from_end``: its last, the last first).

        Looks at a window of bytes at the row's start (end), widened until it holds ``count`` commas.
        """
        count = min(count, self.width - 1)
        if count <= 0:
            return np.zeros((self.starts.size, 1), np.int64)  # no comma needed: the row's own ends bound the cells
        size = 8 * count
        while True:
            size = min(size, self.data.size)
            windows = np.clip(self.ends - size if from_end else self.starts, 0, self.data.size - size)
            hits = sliding_window_view(self.data, size)[windows] == COMMA
            first, stop = self.starts - windows, self.ends - windows  # the row within its window
            if (first > 0).any() or (stop < size).any():  # a window reaching into other rows
                offsets = np.arange(size)
                hits &= (offsets >= first[:, None]) & (offsets < stop[:, None])
            found = np.count_nonzero(hits, axis=1)
            if found.min() >= count or size == self.data.size:
                break
            size *= 4
        flat = np.flatnonzero(hits)  # row by row, in order within each row
        positions = windows[flat // size] + flat % size
        ends = np.cumsum(found)
        nearest = ends - 1 - np.arange(count)[:, None] if from_end else ends - found + np.arange(count)[:, None]
        return positions[nearest.T]

    def _texts(self, starts: np.ndarray, ends: np.ndarray) -> list[str]:
        """The cells ``data[start:end]`` as text."""
        return [
            self.data[start:end].tobytes().decode() for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        ]


def _columns(table: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``table[:, columns]``, columns out of range clipped (the caller discards those)."""
    return table[:, np.clip(columns, 0, table.shape[1] - 1)]


def _to_floats(cells: Sequence[tuple[str, ...] | str], shape: tuple[int, ...]) -> np.ndarray | None:
    """``cells`` as float64 of ``shape``, each converted as ``float`` converts it; None if one is no number."""
    try:
        return np.array(cells, dtype=np.float64).reshape(shape)
    except ValueError:
        return None


_Records = _CsvRows | _PlainRows


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed CSV: column positions by stripped name, the data rows, each row's line number."""

    path: str
    variant: Variant
    columns: Mapping[str, int]  # shared by the tables of one header: read only
    records: _Records
    lines: list[int]

    def missing(self, names: Sequence[str]) -> list[str]:
        """The columns of ``names`` the header lacks."""
        return [name for name in names if name not in self.columns]

    def numbers(self, names: Sequence[str], non_finite_ok: Collection[str] = ()) -> np.ndarray:
        """float64 (rows, len(names)) of the named columns, converted in one numpy call.

        Raises OpenFaceError naming the column and line of the first non-numeric or non-finite cell;
        in the columns of ``non_finite_ok`` NaN and inf are returned as they are (the caller masks them).
        """
        indices = [self.columns[name] for name in names]
        values = self.records.floats(indices)
        if values is None or not (np.isfinite(values) | [name in non_finite_ok for name in names]).all():
            cells = np.array(self.records.pick(indices), dtype=object).reshape(len(self.lines), len(indices))
            self._raise_first_bad_cell(names, cells, non_finite_ok)
        return values

    def _raise_first_bad_cell(
        self, names: Sequence[str], cells: np.ndarray, non_finite_ok: Collection[str]
    ) -> NoReturn:
        """Slow path, only on error: find the offending cell and say where it is."""
        for row, line in zip(cells, self.lines, strict=True):
            for name, cell in zip(names, row, strict=True):
                number: float | None
                try:
                    number = float(cell)
                except ValueError:
                    number = None
                if number is None or (name not in non_finite_ok and not math.isfinite(number)):
                    raise OpenFaceError(
                        f"{self.path}: column {name!r}, line {line}: {cell.strip()!r} is not a finite number"
                    )
        raise AssertionError("a numeric conversion failed but no bad cell was found")


def read_table(path: str | Path, strict: bool = False, variant: Variant | None = None) -> Table:
    """Read ``path``, detect the variant, check required columns, row widths and that data exists.

    ``variant`` skips the detection (e.g. ``PER_FRAME``: any CSV with a ``timestamp`` column). A
    truncated last row (see the module docstring) is dropped with one warning naming the file and
    line, or raises OpenFaceError when ``strict``.
    """
    path = str(path)
    header, lines, records = _read_plain(path) or _read_csv(path)
    if not header:
        raise OpenFaceError(f"{path}: empty file, no OpenFace header")
    variant = variant or _detect_variant(path, header)
    missing = [name for name in variant.required if name not in header]
    if missing:
        raise OpenFaceError(f"{path}: missing required column(s) {missing} for the {variant.name} variant")
    cut = _truncation(records, len(header)) if lines else None
    if cut:
        message = f"{path}: line {lines[-1]}: truncated last row ({cut}), as a killed OpenFace run leaves it"
        if strict:
            raise OpenFaceError(message)
        warnings.warn(f"{message}; the row is dropped", stacklevel=3)
        records = records.without_last()
        lines.pop()
    if not lines:
        raise OpenFaceError(f"{path}: no data rows (OpenFace found no face)")
    widths = records.widths()
    wrong = np.flatnonzero(widths != len(header))
    if wrong.size:
        row = int(wrong[0])
        raise OpenFaceError(f"{path}: line {lines[row]} has {widths[row]} cells, the header has {len(header)}")
    return Table(path, variant, _positions(header), records, lines)


@lru_cache(maxsize=16)
def _positions(header: tuple[str, ...]) -> dict[str, int]:
    """Each column's position by name (one dict per distinct header: a data set's files share theirs)."""
    return {name: position for position, name in enumerate(header)}


@lru_cache(maxsize=16)
def _names(line: str) -> tuple[str, ...]:
    """The stripped column names of a header line; none for an empty line."""
    return tuple(name.strip() for name in line.split(",")) if line else ()


def _truncation(records: _Records, width: int) -> str | None:
    """Why the last row looks cut off mid-write (fewer cells, or a last cell that is no number), or None."""
    cells = records.last_row()
    if len(cells) < width:
        return f"{len(cells)} cells, the header has {width}"
    if len(cells) == width:
        try:
            float(cells[-1])
        except ValueError:
            return f"it ends in {cells[-1].strip()!r}, not a number"
    return None


_Parsed = tuple[tuple[str, ...], list[int], _Records]
"""The stripped header names, each data row's line number, and the data rows."""


def _read_plain(path: str) -> _Parsed | None:
    """A plain file's rows and commas, located with numpy (rows as ``csv.reader`` finds them); None for others."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if not raw.isascii():
            raw.decode("utf-8")  # only to send what is no UTF-8 to _read_csv, which reports it in its words
    except (OSError, UnicodeDecodeError):
        return None
    if b'"' in raw or b"\0" in raw:
        return None
    data = np.frombuffer(raw, np.uint8)[len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0 :]
    breaks = BitPositions.of(data == NEWLINE).positions()
    starts, ends = np.append(0, breaks + 1), np.append(breaks, data.size)
    if b"\r" in raw:  # fine as the end of a CRLF line; a lone one also ends a line for csv
        line_ends = (ends > starts) & (data[np.maximum(ends - 1, 0)] == RETURN)
        if np.count_nonzero(data == RETURN) != np.count_nonzero(line_ends):
            return None
        ends -= line_ends
    if int((ends - starts).max()) >= csv.field_size_limit():
        return None  # a line that may hold a cell over csv's limit: csv.reader decides
    first = data[starts[0] : ends[0]].tobytes().decode()
    header = _names(first)
    kept = np.flatnonzero(ends[1:] > starts[1:]) + 1  # blank lines are skipped but counted
    rows = _PlainRows(data, starts[kept], ends[kept], BitPositions.of(data == COMMA), len(header))
    return header, (kept + 1).tolist(), rows


def _read_csv(path: str) -> _Parsed:
    """Any file, split by ``csv.reader``: quotes, lone carriage returns, over-long cells and all."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = tuple(name.strip() for name in next(reader, ()))
            numbered = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OpenFaceError(f"{path}: cannot read OpenFace CSV: {error}") from error
    return header, [line for line, _ in numbered], _CsvRows([row for _, row in numbered])


def _detect_variant(path: str, header: Sequence[str]) -> Variant:
    if "frame" in header or "face_id" in header:
        return VIDEO
    if "face" in header:
        return IMAGE
    raise OpenFaceError(
        f"{path}: not an OpenFace CSV: the header has neither 'frame'/'face_id' ({VIDEO.name}) "
        f"nor 'face' ({IMAGE.name}); it starts {list(header[:5])}"
    )
