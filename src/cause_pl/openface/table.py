"""Parse an OpenFace 2 CSV into named columns, turning into numbers only the cells a reader asks for.

OpenFace 2.2 FeatureExtraction writes ~714 columns (gaze, 2-D and 3-D landmarks, pose, shape
parameters, AUs) of which a reader uses ~22; splitting every cell of every row into a Python string
was most of a data recipe's time. So a *plain* file (no quote, NUL or lone carriage return, no line as
long as ``csv.field_size_limit()``: everything OpenFace writes) keeps its data rows as unsplit lines,
and a request splits each line only from its two ends, as far as the requested columns reach.
Any other file goes through ``csv.reader``. For a plain file both ways give the same cells (the text
between two commas, spaces kept), line numbers and errors, so the result does not depend on the path.

Only requested cells are converted: text in a column nobody reads (say a landmark) is no error,
while every row must still have as many cells as the header. The one exception is the last data row
of a run that was killed while writing it (fewer cells, or a last cell that is not a number): it is
dropped with a warning, or an error when ``strict``.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import NoReturn

import numpy as np


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

    def widths(self) -> Iterator[int]:
        """Cells per row."""
        return map(len, self.rows)

    def pick(self, indices: Sequence[int]) -> list[tuple[str, ...] | str]:
        """For each row, the cells at ``indices`` (as ``itemgetter`` gives them: one index, one bare cell)."""
        getter = itemgetter(*indices)
        return [getter(row) for row in self.rows]

    def last_row(self) -> list[str]:
        """The cells of the last row."""
        return self.rows[-1]


@dataclass(frozen=True, eq=False)
class _PlainRows:
    """Data rows of a plain file as unsplit lines, ``width`` cells each (a cell: the text between commas)."""

    rows: list[str]
    width: int

    def widths(self) -> Iterator[int]:
        """Cells per row."""
        return (row.count(",") + 1 for row in self.rows)

    def pick(self, indices: Sequence[int]) -> list[tuple[str, ...] | str]:
        """For each row, the cells at ``indices``; the widest stretch of unrequested cells stays unsplit."""
        head, tail = _split_plan(indices, self.width)
        skipped = self.width - head - tail
        getter = itemgetter(*(index if index < head else index - skipped for index in indices))
        return [getter(_end_cells(row, head, tail)) for row in self.rows]

    def last_row(self) -> list[str]:
        """The cells of the last row."""
        return self.rows[-1].split(",")


def _split_plan(indices: Sequence[int], width: int) -> tuple[int, int]:
    """How many cells to split off the start and the end of a line to reach all ``indices``, fewest in all."""
    ordered = sorted(set(indices))
    plans = [
        (ordered[k - 1] + 1 if k else 0, width - ordered[k] if k < len(ordered) else 0) for k in range(len(ordered) + 1)
    ]
    return min(plans, key=sum)


def _end_cells(line: str, head: int, tail: int) -> list[str]:
    """The first ``head`` and the last ``tail`` cells of ``line`` (``head + tail`` at most its width)."""
    cells = line.split(",", head)[:head]
    if tail:
        cells += line.rsplit(",", tail)[-tail:]
    return cells


_Records = _CsvRows | _PlainRows


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed CSV: column positions by stripped name, the data rows, each row's line number."""

    path: str
    variant: Variant
    columns: dict[str, int]
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
        cells = self.records.pick(indices)
        shape = (len(self.lines), len(indices))
        try:
            values = np.array(cells, dtype=np.float64).reshape(shape)
        except ValueError:
            values = None
        if values is None or not (np.isfinite(values) | np.isin(names, list(non_finite_ok))).all():
            self._raise_first_bad_cell(names, np.array(cells, dtype=object).reshape(shape), non_finite_ok)
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
        records.rows.pop()
        lines.pop()
    if not lines:
        raise OpenFaceError(f"{path}: no data rows (OpenFace found no face)")
    for line, width in zip(lines, records.widths(), strict=True):
        if width != len(header):
            raise OpenFaceError(f"{path}: line {line} has {width} cells, the header has {len(header)}")
    columns = {name: position for position, name in enumerate(header)}
    return Table(path, variant, columns, records, lines)


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
    """A plain file split into lines (rows are found as ``csv.reader`` would); None for any other file."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None  # _read_csv reports it, in its words
    if '"' in text or "\0" in text:
        return None
    lines = text.split("\n")
    if "\r" in text:  # fine as the end of a CRLF line; a lone one also ends a line for csv
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if any("\r" in line for line in lines):
            return None
    if max(map(len, lines)) >= csv.field_size_limit():
        return None
    header = tuple(name.strip() for name in lines[0].split(",")) if lines[0] else ()
    numbered = [(number, line) for number, line in enumerate(lines[1:], start=2) if line]
    return header, [number for number, _ in numbered], _PlainRows([line for _, line in numbered], len(header))


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
