"""The fast number path of plain OpenFace files: all plain decimal cells parsed at once with numpy.

It must give exactly what ``float`` gives cell by cell (the csv.reader path), take OpenFace's own
files, and hand anything else (text, NaN, odd spacing) to the cell-by-cell conversion, so values
and error messages do not depend on the path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from cause_pl.openface import table as openface_table
from cause_pl.openface.byte_numbers import plain_decimals
from cause_pl.openface.reader import read_openface_csv
from tests.builders.openface_csv import LAYOUTS, OPENFACE_VERSIONS, Layout, as_openface, video_table
from tests.openface.test_table import assert_same_tracks, both_paths, full_width

ODD_CELLS = ("", " ", "-", ".", "1.2.3", "1-2", "1 2", "e5", "1e", "--1", "nan", "-inf", "1_0", "\u0663", "\t1", "0x1")
"""Cells ``plain_decimals`` leaves to ``float``: no numbers, or forms it does not parse (NaN, inf, 1_0, ...)."""


def formatted_numbers(count: int, seed: int) -> list[str]:
    """Numbers written every way a CSV writer might: repr, fixed decimals, exponents, signs, padding."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1000.0, 1000.0, count) * 10.0 ** rng.integers(-8, 8, count)
    formats: list[Callable[[float], str]] = [
        repr,
        lambda value: f"{value:.2f}",
        lambda value: f"{value:.0f}",
        lambda value: f"{value:.6e}",
        lambda value: f" {value:.3f} ",
        lambda value: f"{abs(value):+.1f}",
        lambda value: f"{value:.25f}",
        lambda value: f"00{abs(value):.4f}",
    ]
    cells = [formats[i % len(formats)](float(value)) for i, value in enumerate(values)]
    return [*cells, "-0", "-0.0", "0", "5.", ".5", "-.5", "1e308", "1e-320", "9007199254740993", "999999999999999"]


def decimals(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``plain_decimals`` of ``cells`` written one after the other, comma-separated."""
    sizes = np.array([len(cell.encode()) for cell in cells])
    starts = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]])
    data = np.frombuffer(",".join(cells).encode(), np.uint8)
    return plain_decimals(data, starts, starts + sizes)


def test_plain_decimals_parse_exactly_as_float_does() -> None:
    cells = formatted_numbers(4000, seed=0)
    values, plain = decimals(cells)
    expected = np.array([float(cell) for cell in cells])
    np.testing.assert_array_equal(values[plain].view(np.int64), expected[plain].view(np.int64))  # -0.0 too
    assert plain.mean() > 0.3  # fixed decimals of up to 15 digits
    must = ["0.98", " 1.25 ", "-0", "-0.0", "007.50", "123456789012345", "-1.00000000000001", "5", "  -3.5"]
    values, plain = decimals(must)
    assert plain.all()
    np.testing.assert_array_equal(values.view(np.int64), np.array([float(c) for c in must]).view(np.int64))


@pytest.mark.parametrize("cell", [*ODD_CELLS, "1234567890123456", "1e5", "+1", "5.", ".5", "-.5"])
def test_anything_else_is_left_to_float(cell: str) -> None:
    for cells in ([cell, "1"], ["1", cell, "2"], ["1", cell]):
        _, plain = decimals(cells)
        assert not plain[cells.index(cell)], cells
        assert plain.sum() == len(cells) - 1


def refuse_cell_by_cell(cells: object, shape: tuple[int, int]) -> None:
    raise AssertionError("a plain OpenFace file was converted cell by cell")


@pytest.mark.parametrize("layout", ["comma", "comma_space", "openface", "crlf, bom"])
@pytest.mark.parametrize("version", OPENFACE_VERSIONS)
def test_openface_files_are_parsed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, layout: str
) -> None:
    layouts = {**LAYOUTS, "openface": Layout(", ", ", "), "crlf, bom": Layout(", ", ",", "\r\n", bom=True)}
    aus = np.random.default_rng(3).uniform(0.0, 5.0, (60, NUM_AUS))
    table = full_width(as_openface(video_table(aus, success=np.arange(60) % 9 != 4), version))
    path = table.write(tmp_path / "clip.csv", layouts[layout])
    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path))
    assert_same_tracks(plain, general)
    with monkeypatch.context() as patch:
        patch.setattr(openface_table, "_to_floats", refuse_cell_by_cell)
        assert_same_tracks(read_openface_csv(path), general)


@pytest.mark.parametrize("cell", ODD_CELLS)
@pytest.mark.parametrize("column", ["confidence", "AU12_r", "AU12_c"])
def test_odd_cells_read_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str, cell: str
) -> None:
    """An odd cell in a used column (an error, or a NaN AU) or in an unused one among them."""
    aus = np.random.default_rng(4).uniform(0.0, 5.0, (30, NUM_AUS)).round(2)
    table = full_width(video_table(aus))
    table.set_cell(17, column, cell)
    path = table.write(tmp_path / "odd.csv", "comma_space")
    plain, general = both_paths(monkeypatch, lambda: read_openface_csv(path))
    if isinstance(general, str):
        assert plain == general
    else:
        assert_same_tracks(plain, general)


@pytest.mark.parametrize("content", [b"timestamp\n0.0\n0.04\n", b"timestamp, AU12_r\r\n0.0, 1\r\n\r\n0.04, 2.5"])
def test_narrow_per_frame_files_read_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    """One and two columns: no comma, or one, to find cells by."""
    path = tmp_path / "narrow.csv"
    path.write_bytes(content)
    names = tuple(content.split(b"\n")[0].decode().replace(" ", "").strip().split(","))

    def read() -> np.ndarray:
        return openface_table.read_table(path, variant=openface_table.PER_FRAME).numbers(names)

    plain, general = both_paths(monkeypatch, read)
    np.testing.assert_array_equal(plain, general)
    assert isinstance(plain, np.ndarray) and plain.shape == (2, len(names))
