"""OpenFace CSV parsing: the plain-file path (lines split only where needed) matches the csv.reader path.

Every check reads the same file twice, once with the csv.reader path switched off and once with the
plain-file path switched off, and compares the arrays or the error messages. Files are full width
(714 columns, as OpenFace 2.2 FeatureExtraction writes), in both spacing styles, with a BOM or not.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import AU_COLUMNS, NUM_AUS
from cause_pl.openface import table as openface_table
from cause_pl.openface.reader import OpenFaceTrack, landmarks_2d, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from tests.builders.openface_csv import STYLES, CsvTable, image_table, video_table

OPENFACE_WIDTH = 714
"""Columns in an OpenFace 2.2 FeatureExtraction CSV with every output switched on."""
BOM = b"\xef\xbb\xbf"
TRACK_ARRAYS = ("aus", "valid", "frames", "timestamps", "confidence")


def full_width(table: CsvTable) -> CsvTable:
    """``table`` padded to OpenFace's width with pixel-like numbers before the AU columns.

    OpenFace writes eye and 3-D landmarks and shape parameters there; no reader uses them.
    """
    count = OPENFACE_WIDTH - len(table.header)
    values = np.random.default_rng(0).uniform(-300.0, 600.0, (len(table.rows), count)).round(1)
    at = table.header.index("AU01_r")
    header = [*table.header[:at], *(f"p_{i}" for i in range(count)), *table.header[at:]]
    rows = [
        [*row[:at], *map(repr, padding.tolist()), *row[at:]] for row, padding in zip(table.rows, values, strict=True)
    ]
    return CsvTable(header, rows)


def random_aus(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 5.0, (count, NUM_AUS)).round(2)


def three_faces_table() -> tuple[CsvTable, list[np.ndarray], list[np.ndarray]]:
    """Faces 0, 2, 5 with their own frame ranges, failed (``success = 0``) and unsure rows."""
    aus = [random_aus(40, seed=1), random_aus(25, seed=2), random_aus(10, seed=3)]
    success = [np.arange(40) % 7 != 3, np.arange(25) % 5 != 0, np.ones(10, dtype=bool)]
    confidence = [np.linspace(0.5, 0.99, 40), np.full(25, 0.9), np.full(10, 0.95)]
    table = video_table(
        aus,
        face_ids=[0, 2, 5],
        success=success,
        confidence=confidence,
        frames=[None, np.arange(10, 35), np.arange(3, 33, 3)],
    )
    return full_width(table), aus, success


def write(table: CsvTable, path: Path, style: str, bom: bool = False) -> Path:
    """``table`` written in ``style``, behind a UTF-8 byte order mark if ``bom``."""
    table.write(path, style)
    if bom:
        path.write_bytes(BOM + path.read_bytes())
    return path


def refuse_csv_reader(path: str) -> None:
    raise AssertionError(f"{path}: a plain file went to the csv.reader path")


def outcome(read: Callable[[], object]) -> object:
    """What ``read()`` gives: its result, or the message of the OpenFaceError it raises."""
    try:
        return read()
    except OpenFaceError as error:
        return f"OpenFaceError: {error}"


def both_paths(monkeypatch: pytest.MonkeyPatch, read: Callable[[], object]) -> tuple[object, object]:
    """``read()`` through the plain-file path only, then through the csv.reader path only."""
    with monkeypatch.context() as patch:
        patch.setattr(openface_table, "_read_csv", refuse_csv_reader)
        plain = outcome(read)
    with monkeypatch.context() as patch:
        patch.setattr(openface_table, "_read_plain", lambda path: None)
        general = outcome(read)
    return plain, general


def assert_same_tracks(first: object, second: object) -> None:
    """Both are tracks of the same face with equal arrays of equal dtypes."""
    assert isinstance(first, OpenFaceTrack) and isinstance(second, OpenFaceTrack), (first, second)
    for name in TRACK_ARRAYS:
        a, b = getattr(first, name), getattr(second, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert first.face_id == second.face_id


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("style", STYLES)
def test_full_width_video_csv_reads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str, bom: bool
) -> None:
    table, aus, success = three_faces_table()
    path = write(table, tmp_path / "clip.csv", style, bom)
    assert len(path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")) == OPENFACE_WIDTH

    for face_id in (None, 0, 2, 5):
        plain, general = both_paths(monkeypatch, lambda face_id=face_id: read_openface_csv(path, face_id=face_id))
        assert_same_tracks(plain, general)
    default = read_openface_csv(path)
    assert default.face_id == 0
    np.testing.assert_array_equal(default.aus[success[0]], aus[0][success[0]].astype(np.float32))
    assert not default.valid[~success[0]].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scattered_columns_read_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Used columns anywhere, first and last included: lines are split from both ends as needed."""
    table, _, _ = three_faces_table()
    order = np.random.default_rng(seed).permutation(len(table.header)).tolist()
    order.remove(table.header.index("frame"))
    order.remove(table.header.index(AU_COLUMNS[-1]))
    order = [table.header.index("frame"), *order, table.header.index(AU_COLUMNS[-1])][:: 1 if seed else -1]
    shuffled = CsvTable([table.header[i] for i in order], [[row[i] for i in order] for row in table.rows])
    path = write(shuffled, tmp_path / "shuffled.csv", STYLES[seed % 2])

    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path, face_id=2))
    assert_same_tracks(plain, general)


@pytest.mark.parametrize("style", STYLES)
def test_image_csv_reads_the_same_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    rng = np.random.default_rng(4)
    faces = [
        (random_aus(1, seed)[0], confidence, rng.uniform(50, 200, (68, 2)).round(3))
        for seed, confidence in enumerate((0.8, 0.95, 0.5))
    ]
    path = write(image_table(faces), tmp_path / "photo.csv", style)

    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path, face_id=2))
    assert_same_tracks(plain, general)
    plain, general = both_paths(monkeypatch, lambda: landmarks_2d(path))
    np.testing.assert_array_equal(plain, general)
    np.testing.assert_array_equal(plain, faces[1][2].astype(np.float32))


def set_cell(row: int, column: str, text: str) -> Callable[[CsvTable], None]:
    return lambda table: table.set_cell(row, column, text)


def repeat_frame_of_face_0(table: CsvTable) -> None:
    """Face 0's 20th row gets frame 1 and timestamp 0 again (other faces' rows are interleaved with face 0's)."""
    face, frame, timestamp = (table.header.index(name) for name in ("face_id", "frame", "timestamp"))
    row = next(row for row in table.rows if row[face] == "0" and row[frame] == "20")
    row[frame], row[timestamp] = "1", "0.0"


MALFORMED: dict[str, tuple[Callable[[CsvTable], None], str]] = {
    "short row": (lambda t: t.rows[6].pop(500), r"line 8 has 713 cells, the header has 714"),
    "long row": (lambda t: t.rows[9].append("1.0"), r"line 11 has 715 cells"),
    "blank-looking row": (lambda t: t.rows.insert(4, [" "]), r"line 6 has 1 cells"),
    "text in an AU": (set_cell(12, "AU06_r", "abc"), r"'AU06_r', line 14: 'abc'"),
    "empty confidence": (set_cell(3, "confidence", ""), r"'confidence', line 5: ''"),
    "infinite timestamp": (set_cell(20, "timestamp", "inf"), r"'timestamp', line 22: 'inf'"),
    "fractional face id": (set_cell(2, "face_id", "0.5"), r"'face_id', line 4: 0.5 is not an integer"),
    "decreasing frames": (
        repeat_frame_of_face_0,
        r"face 0, line \d+: .*frame 1 follows frame 19.* repeats 0 s\) order the rows$",
    ),
    "renamed face_id": (
        lambda t: t.header.__setitem__(t.header.index("face_id"), "id"),
        r"face 0, line \d+: neither .* \(several faces, but no face_id column\?\)",
    ),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_give_the_same_error_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, style: str
) -> None:
    table, _, _ = three_faces_table()
    edit, message = MALFORMED[case]
    edit(table)
    path = write(table, tmp_path / "broken.csv", style)

    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path))
    assert plain == general
    assert isinstance(plain, str), "the file must be rejected"
    assert re.search(rf"broken\.csv.*{message}", plain), plain


@pytest.mark.parametrize("style", STYLES)
def test_blank_lines_are_skipped_but_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    """Two blank lines before the sixth data row: csv.reader skips them but counts them in line numbers."""
    table, _, _ = three_faces_table()
    clean = write(table, tmp_path / "clean.csv", style)
    newline = "\r\n" if style == "comma_space" else "\n"
    lines = clean.read_bytes().decode().split(newline)
    gappy = tmp_path / "gappy.csv"
    gappy.write_text(newline.join([*lines[:6], "", "", *lines[6:], "", ""]), newline="")
    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(gappy))
    assert_same_tracks(plain, general)
    assert_same_tracks(plain, read_openface_csv(clean))

    table.set_cell(5, "AU12_r", "x")
    lines = write(table, clean, style).read_bytes().decode().split(newline)
    gappy.write_text(newline.join([*lines[:6], "", "", *lines[6:]]), newline="")
    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(gappy))
    assert plain == general
    assert re.search(r"'AU12_r', line 9: 'x'", plain), plain


@pytest.mark.parametrize("style", STYLES)
def test_text_in_unused_columns_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    """Only the columns a reader uses are converted (as before): a broken landmark does not reject a clip."""
    table, _, _ = three_faces_table()
    clean = read_openface_csv(write(table, tmp_path / "clip.csv", style))
    for row in (0, 7, 70):
        table.set_cell(row, "x_3", "n/a")
        table.set_cell(row, "p_100", "")
        table.set_cell(row, "AU12_c", "nan")
    path = write(table, tmp_path / "clip.csv", style)

    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path))
    assert_same_tracks(plain, general)
    assert_same_tracks(plain, clean)


def test_quotes_and_odd_line_ends_read_as_before(tmp_path: Path) -> None:
    """Quoted cells and old-Mac line ends (lone CR) go to csv.reader; mixed LF/CRLF ends stay plain.

    The table is small, so that no line reaches csv's field size limit (which also sends a file to csv).
    """
    table = video_table([random_aus(6, seed=5), random_aus(4, seed=6)], success=[np.arange(6) != 2, None])
    reference = read_openface_csv(write(table, tmp_path / "plain.csv", "comma"))
    text = (tmp_path / "plain.csv").read_text()
    quoted = CsvTable(
        [f'"{name}"' for name in table.header],
        [[f'"{cell}"' for cell in row] for row in table.rows],
    )
    variants = {
        "quoted.csv": quoted.write(tmp_path / "quoted.csv").read_text(),
        "lone_cr.csv": text.replace("\n", "\r"),
        "mixed_ends.csv": text.replace("\n", "\r\n", 5),
    }
    for name, content in variants.items():
        (tmp_path / name).write_text(content, newline="")
        assert_same_tracks(read_openface_csv(tmp_path / name), reference)


def test_csv_field_size_limit_still_applies(tmp_path: Path) -> None:
    """A line that could hold a cell over csv's field size limit is left to csv.reader, which rejects it."""
    table, _, _ = three_faces_table()
    path = write(table, tmp_path / "clip.csv", "comma")
    reference = read_openface_csv(path)
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(64)  # longer than any cell, shorter than any line
        assert_same_tracks(read_openface_csv(path), reference)
        csv.field_size_limit(4)  # shorter than most cells
        with pytest.raises(OpenFaceError, match=r"clip\.csv: cannot read OpenFace CSV: field larger than"):
            read_openface_csv(path)
    finally:
        csv.field_size_limit(limit)


@pytest.mark.parametrize("style", STYLES)
def test_a_truncated_last_row_is_dropped_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    table, _, _ = three_faces_table()
    clean = read_openface_csv(write(table, tmp_path / "clean.csv", style), face_id=0)
    table.rows.append([*table.rows[-1][:300], "12"])
    path = write(table, tmp_path / "killed.csv", style)
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))

    with pytest.warns(UserWarning, match=rf"killed\.csv: line {len(table.rows) + 1}: truncated") as caught:
        plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path, face_id=0))
    assert len(caught) == 2, "one warning per read"
    assert_same_tracks(plain, general)
    assert_same_tracks(plain, clean)
