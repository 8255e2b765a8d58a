"""OpenFace CSVs as real runs leave them: versions, byte layouts, killed runs, broken frame columns, many faces."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from cause_pl.openface.reader import align_to_frames, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from tests.builders.openface_csv import (
    OPENFACE_LAYOUT,
    OPENFACE_VERSIONS,
    CsvTable,
    Layout,
    as_openface,
    video_table,
)

LAYOUTS = {
    "openface": OPENFACE_LAYOUT,
    "windows": Layout(", ", ", ", "\r\n"),
    "spaced header, plain rows": Layout(", ", ","),
    "plain header, spaced rows": Layout(",", ", ", pad=True),
    "bom, crlf, no final newline": Layout(", ", ",", "\r\n", bom=True, final_newline=False),
    "no final newline": Layout(final_newline=False),
}
HEADER_STARTS = {
    "2.0.0": b"frame, timestamp, confidence, success, gaze_0_x, gaze_0_y",
    "2.2.0": b"frame, face_id, timestamp, confidence, success, gaze_0_x, gaze_0_y",
}


def random_aus(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 5.0, (count, NUM_AUS))


def printed(values: np.ndarray) -> np.ndarray:
    """``values`` as OpenFace prints them (2 decimals) and the reader returns them (float32)."""
    return np.array([[f"{value:.2f}" for value in row] for row in values], dtype=np.float64).astype(np.float32)


def openface_clip(version: str = "2.2.0", count: int = 12, **options) -> tuple[CsvTable, np.ndarray]:
    aus = random_aus(count, seed=count)
    return as_openface(video_table(aus, **options), version), aus


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("version", OPENFACE_VERSIONS)
def test_every_version_and_layout_reads_the_same(tmp_path: Path, version: str, layout: str) -> None:
    table, aus = openface_clip(version, success=np.arange(12) != 4)
    path = table.write(tmp_path / "clip.csv", LAYOUTS[layout])
    header = HEADER_STARTS[version].replace(b", ", LAYOUTS[layout].header_separator.encode())
    assert path.read_bytes().startswith(b"\xef\xbb\xbf" * LAYOUTS[layout].bom + header)

    track = read_openface_csv(path)

    assert track.face_id == 0 and not track.by_timestamp
    np.testing.assert_array_equal(track.frames, np.arange(1, 13))
    np.testing.assert_array_equal(track.valid, np.arange(12) != 4)
    np.testing.assert_array_equal(track.aus[track.valid], printed(aus)[track.valid])
    np.testing.assert_allclose(track.timestamps, np.arange(12) / 25.0)
    np.testing.assert_array_equal(align_to_frames(track, 12)[0], track.aus)


def test_openface_bytes_exactly(tmp_path: Path) -> None:
    """The builder writes what OpenFace 2.2.0 and 2.0.0 write, byte for byte (first cells of row 1)."""
    for version, row in (("2.2.0", b"1, 0, 0.000, 0.98, 1, "), ("2.0.0", b"1, 0.000, 0.98, 1, ")):
        table, _ = openface_clip(version, count=3)
        lines = table.write(tmp_path / f"{version}.csv", OPENFACE_LAYOUT).read_bytes().split(b"\n")
        assert lines[0].startswith(HEADER_STARTS[version]) and lines[1].startswith(row), lines[:2]
        assert lines[0].endswith(b", AU45_c") and lines[-1] == b""


CUTS = {
    "mid-number": lambda line: line[: line.rindex(b",") - 3],
    "after a separator": lambda line: line[: line.rindex(b",") + 1],
    "last cell cut to a sign": lambda line: line[: line.rindex(b",") + 1] + b" -",
}


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("layout", ["openface", "bom, crlf, no final newline"])
def test_a_killed_run_loses_its_last_row_with_one_warning(tmp_path: Path, cut: str, layout: str) -> None:
    table, aus = openface_clip(count=8)
    path = table.write(tmp_path / "killed.csv", LAYOUTS[layout])
    newline = LAYOUTS[layout].newline.encode()
    lines = path.read_bytes().removesuffix(newline).split(newline)
    path.write_bytes(newline.join([*lines[:-1], CUTS[cut](lines[-1])]))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        track = read_openface_csv(path)
    assert len(caught) == 1 and f"{path}: line 9: truncated last row" in str(caught[0].message)
    assert len(track) == 7
    np.testing.assert_array_equal(track.aus, printed(aus[:7]))

    with pytest.raises(OpenFaceError, match=r"killed\.csv: line 9: truncated last row"):
        read_openface_csv(path, strict=True)


def test_a_short_row_before_the_last_is_still_an_error(tmp_path: Path) -> None:
    table, _ = openface_clip(count=5)
    table.rows[2] = table.rows[2][:100]
    with pytest.raises(OpenFaceError, match=r"middle\.csv: line 4 has 100 cells"):
        read_openface_csv(table.write(tmp_path / "middle.csv", OPENFACE_LAYOUT))


def test_a_file_with_only_a_truncated_row_has_no_data(tmp_path: Path) -> None:
    table, _ = openface_clip(count=1)
    table.rows[0] = table.rows[0][:50]
    path = table.write(tmp_path / "stub.csv", Layout(final_newline=False))
    with pytest.warns(UserWarning, match=r"stub\.csv: line 2"), pytest.raises(OpenFaceError, match="no data rows"):
        read_openface_csv(path)


@pytest.mark.parametrize("frames", ["stuck at 0", "shuffled rows", "counting down"])
def test_unusable_frame_numbers_fall_back_to_timestamps(tmp_path: Path, frames: str) -> None:
    table, aus = openface_clip(count=10, success=np.arange(10) != 6)
    column = table.header.index("frame")
    order = np.random.default_rng(1).permutation(10) if frames == "shuffled rows" else np.arange(10)
    rows = [list(table.rows[i]) for i in order]
    for position, row in enumerate(rows):
        row[column] = {"stuck at 0": "0", "shuffled rows": "0", "counting down": str(10 - position)}[frames]
    track = read_openface_csv(CsvTable(table.header, rows).write(tmp_path / "clip.csv", OPENFACE_LAYOUT))

    assert track.by_timestamp
    np.testing.assert_allclose(track.timestamps, np.arange(10) / 25.0)
    aligned, valid = align_to_frames(track, 10)
    np.testing.assert_array_equal(valid, np.arange(10) != 6)
    np.testing.assert_array_equal(aligned[valid], printed(aus)[valid])


def test_two_faces_in_a_2_0_0_file_cannot_be_told_apart(tmp_path: Path) -> None:
    table = as_openface(video_table([random_aus(4, 1), random_aus(4, 2)]), "2.0.0")
    with pytest.raises(OpenFaceError, match=r"mixed\.csv: face 0, line 3: .*no face_id column\?\)$"):
        read_openface_csv(table.write(tmp_path / "mixed.csv", OPENFACE_LAYOUT))


def test_several_faces_default_to_the_one_tracked_in_most_frames(tmp_path: Path) -> None:
    """FaceLandmarkVidMulti: face 0 in all 20 frames but mostly unsure, face 1 in frames 5..16, tracked."""
    unsure = np.where(np.arange(20) < 14, 0.3, 0.9)
    multi = as_openface(
        video_table(
            [random_aus(20, 3), random_aus(12, 4)],
            confidence=[unsure, None],
            success=[None, np.arange(12) != 0],
            frames=[None, np.arange(5, 17)],
        )
    )
    path = multi.write(tmp_path / "multi.csv", OPENFACE_LAYOUT)

    assert read_openface_csv(path).face_id == 1
    assert read_openface_csv(path, min_confidence=0.2).face_id == 0
    chosen = read_openface_csv(path, face_id=0)
    assert chosen.face_id == 0 and chosen.valid.sum() == 6
    np.testing.assert_array_equal(align_to_frames(read_openface_csv(path), 16)[1], np.arange(16) >= 5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"frame, face_id\n", r"missing required column\(s\) \['confidence', 'success'\]"),
        (b"\xef\xbb\xbf\r\n", r"empty file"),
        (b"gaze_0_x, gaze_0_y\r\n0.1, 0.2\r\n", r"not an OpenFace CSV"),
        (b"face, confidence, AU01_r\n0, 0.9, 1.0\n", r"missing AU intensity column"),
    ],
)
def test_what_cannot_be_read_is_one_line_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(OpenFaceError, match=rf"^{re.escape(str(path))}: .*{message}") as caught:
        read_openface_csv(path)
    assert "\n" not in str(caught.value)
