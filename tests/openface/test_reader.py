"""OpenFace CSV reading: both tools, both spacing styles, face choice, validity, alignment, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from cause_pl.openface.reader import AlignmentError, align_to_frames, landmarks_2d, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from tests.builders.openface_csv import (
    STYLES,
    CsvTable,
    image_table,
    video_table,
    write_image_csv,
    write_video_csv,
)


def random_aus(count: int, seed: int) -> np.ndarray:
    """AU intensities on the 0..5 scale as float32, so a round trip must be bit-exact."""
    return np.random.default_rng(seed).uniform(0.0, 5.0, size=(count, NUM_AUS)).astype(np.float32)


def random_landmarks(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(50.0, 200.0, size=(68, 2)).astype(np.float32)


@pytest.mark.parametrize("style", STYLES)
def test_video_csv_round_trips_exactly(tmp_path: Path, style: str) -> None:
    aus = random_aus(30, seed=1)
    confidence = np.linspace(0.75, 0.99, 30).astype(np.float32)
    path = write_video_csv(tmp_path / "clip.csv", aus, style=style, confidence=confidence, fps=25.0)
    first_line = path.read_bytes().split(b"\n")[0]
    assert first_line.startswith(b"frame, face_id" if style == "comma_space" else b"frame,face_id,")

    track = read_openface_csv(path)

    assert len(track) == 30
    assert track.aus.dtype == np.float32 and track.aus.shape == (30, NUM_AUS)
    np.testing.assert_array_equal(track.aus, aus)
    np.testing.assert_array_equal(track.confidence, confidence)
    np.testing.assert_array_equal(track.frames, np.arange(1, 31))
    assert track.frames.dtype == np.int64
    np.testing.assert_allclose(track.timestamps, np.arange(30) / 25.0)
    assert track.valid.dtype == bool and track.valid.all()
    assert track.face_id == 0 and track.path == str(path)
    assert track.last_frame == 30


def test_au_columns_are_found_by_name_in_any_order(tmp_path: Path) -> None:
    aus = random_aus(5, seed=2)
    table = video_table(aus, extra_columns=False)
    order = list(reversed(range(len(table.header))))
    shuffled = CsvTable([table.header[i] for i in order], [[row[i] for i in order] for row in table.rows])
    with_extras = write_video_csv(tmp_path / "extras.csv", aus, extra_columns=True)

    np.testing.assert_array_equal(read_openface_csv(shuffled.write(tmp_path / "shuffled.csv")).aus, aus)
    np.testing.assert_array_equal(read_openface_csv(with_extras).aus, aus)


def two_face_csv(tmp_path: Path, style: str = "comma") -> tuple[Path, np.ndarray, np.ndarray]:
    """Face 0 in frames 1..10, face 3 in frames 3..8 (rows interleaved by frame)."""
    face0, face3 = random_aus(10, seed=3), random_aus(6, seed=4)
    path = write_video_csv(
        tmp_path / "two_faces.csv",
        [face0, face3],
        face_ids=[0, 3],
        frames=[None, np.arange(3, 9)],
        style=style,
    )
    return path, face0, face3


@pytest.mark.parametrize("style", STYLES)
def test_two_faces_default_is_the_face_in_most_rows(tmp_path: Path, style: str) -> None:
    path, face0, _ = two_face_csv(tmp_path, style)
    track = read_openface_csv(path)
    assert track.face_id == 0
    np.testing.assert_array_equal(track.aus, face0)
    np.testing.assert_array_equal(track.frames, np.arange(1, 11))


def test_two_faces_explicit_pick(tmp_path: Path) -> None:
    path, _, face3 = two_face_csv(tmp_path)
    track = read_openface_csv(path, face_id=3)
    assert track.face_id == 3
    np.testing.assert_array_equal(track.aus, face3)
    np.testing.assert_array_equal(track.frames, np.arange(3, 9))
    np.testing.assert_allclose(track.timestamps, (np.arange(3, 9) - 1) / 25.0)


def test_unknown_face_id_lists_the_available_ones(tmp_path: Path) -> None:
    path, _, _ = two_face_csv(tmp_path)
    with pytest.raises(OpenFaceError, match=r"two_faces\.csv.*face 7.*\[0, 3\]"):
        read_openface_csv(path, face_id=7)


def test_tied_faces_prefer_higher_confidence_then_lower_id(tmp_path: Path) -> None:
    aus = [random_aus(4, seed=5), random_aus(4, seed=6)]
    sure_second = write_video_csv(
        tmp_path / "sure.csv", aus, face_ids=[1, 2], confidence=[np.full(4, 0.8), np.full(4, 0.9)]
    )
    equal = write_video_csv(tmp_path / "equal.csv", aus, face_ids=[5, 2])
    assert read_openface_csv(sure_second).face_id == 2
    assert read_openface_csv(equal).face_id == 2


def test_failed_and_unsure_rows_are_invalid(tmp_path: Path) -> None:
    aus = random_aus(8, seed=7)
    success = np.array([1, 0, 1, 1, 0, 1, 1, 1])
    confidence = np.array([0.9, 0.1, 0.69, 0.7, 0.2, 0.5, 0.95, 0.8])
    path = write_video_csv(tmp_path / "faults.csv", aus, success=success, confidence=confidence)

    track = read_openface_csv(path)
    np.testing.assert_array_equal(track.valid, (success == 1) & (confidence >= 0.7))
    assert not track.aus[success == 0].any(), "OpenFace writes zeros where it failed"
    np.testing.assert_array_equal(track.aus[success == 1], aus[success == 1])

    lenient = read_openface_csv(path, min_confidence=0.4)
    np.testing.assert_array_equal(lenient.valid, (success == 1) & (confidence >= 0.4))


@pytest.mark.parametrize("style", STYLES)
def test_rows_with_nan_au_cells_are_invalid_with_zero_aus(tmp_path: Path, style: str) -> None:
    aus = random_aus(6, seed=9)
    table = video_table(aus)
    table.set_cell(1, "AU06_r", "nan")
    table.set_cell(1, "AU12_r", "nan")
    table.set_cell(4, "AU45_r", "inf")
    track = read_openface_csv(table.write(tmp_path / "nan_cells.csv", style))

    np.testing.assert_array_equal(track.valid, [True, False, True, True, False, True])
    assert np.isfinite(track.aus).all() and not track.aus[~track.valid].any()
    np.testing.assert_array_equal(track.aus[track.valid], aus[track.valid])
    aligned, valid = align_to_frames(track, num_frames=6)
    assert np.isfinite(aligned).all()
    np.testing.assert_array_equal(valid, track.valid)


def test_align_gap_frames_are_invalid_with_zero_aus(tmp_path: Path) -> None:
    frames = np.array([3, 4, 5, 8, 9, 10])
    aus = random_aus(len(frames), seed=8)
    track = read_openface_csv(write_video_csv(tmp_path / "gaps.csv", aus, frames=frames))

    aligned, valid = align_to_frames(track, num_frames=10)

    assert aligned.dtype == np.float32 and aligned.shape == (10, NUM_AUS)
    np.testing.assert_array_equal(valid, np.isin(np.arange(10), frames - 1))
    np.testing.assert_array_equal(aligned[frames - 1], aus)
    assert not aligned[~valid].any()


def test_align_trims_to_the_shorter_stream(tmp_path: Path) -> None:
    aus = random_aus(10, seed=9)
    track = read_openface_csv(write_video_csv(tmp_path / "ten.csv", aus))

    longer_audio, valid = align_to_frames(track, num_frames=12)
    np.testing.assert_array_equal(longer_audio, aus)
    assert valid.shape == (10,) and valid.all()

    shorter_audio, valid = align_to_frames(track, num_frames=8)
    np.testing.assert_array_equal(shorter_audio, aus[:8])
    assert valid.shape == (8,)


def test_align_rejects_a_misaligned_pair(tmp_path: Path) -> None:
    track = read_openface_csv(write_video_csv(tmp_path / "ten.csv", random_aus(10, seed=10)))
    with pytest.raises(AlignmentError, match=r"ten\.csv.*10.*13") as caught:
        align_to_frames(track, num_frames=13)
    assert isinstance(caught.value, OpenFaceError)
    with pytest.raises(AlignmentError, match=r"ten\.csv"):
        align_to_frames(track, num_frames=7)
    assert align_to_frames(track, num_frames=13, max_mismatch=3)[0].shape == (10, NUM_AUS)


def set_cell(row: int, column: str, text: str) -> Callable[[CsvTable], None]:
    return lambda table: table.set_cell(row, column, text)


def video_with(edit: Callable[[CsvTable], CsvTable | None]) -> CsvTable:
    """A small valid video table changed by ``edit`` (which may edit in place or return a new table)."""
    table = video_table(random_aus(5, seed=11), extra_columns=False)
    return edit(table) or table


def cut_cell(table: CsvTable) -> None:
    table.rows[2].pop()


def untimed(edit: Callable[[CsvTable], None]) -> Callable[[CsvTable], CsvTable]:
    """``edit`` applied to a table without its timestamp column (so frame numbers alone order the rows)."""

    def apply(table: CsvTable) -> CsvTable:
        table = table.drop_columns("timestamp")
        edit(table)
        return table

    return apply


def repeat_second_row(table: CsvTable) -> None:
    """Row 4 gets frame 2 and row 2's timestamp: neither column orders the rows."""
    table.set_cell(3, "frame", "2")
    table.set_cell(3, "timestamp", table.rows[1][table.header.index("timestamp")])


VIDEO_ERRORS = {
    "missing AU columns": (lambda t: t.drop_columns("AU12_r", "AU45_r"), r"AU12_r.*AU45_r"),
    "missing success": (lambda t: t.drop_columns("success"), r"'success'.*video"),
    "missing frame": (lambda t: t.drop_columns("frame"), r"'frame'.*video"),
    "not openface": (lambda t: t.drop_columns("frame", "face_id"), r"not an OpenFace CSV"),
    "no data rows": (lambda t: CsvTable(t.header, []), r"no data rows"),
    "text in an AU": (lambda t: t.set_cell(2, "AU06_r", "abc"), r"'AU06_r', line 4: 'abc'"),
    "NaN confidence": (lambda t: t.set_cell(0, "confidence", "nan"), r"'confidence', line 2: 'nan'"),
    "empty frame cell": (lambda t: t.set_cell(1, "frame", ""), r"'frame', line 3"),
    "fractional frame": (lambda t: t.set_cell(1, "frame", "2.5"), r"'frame', line 3: 2.5 is not an integer"),
    "decreasing frames": (untimed(set_cell(3, "frame", "2")), r"line 5: .*but frame 2 follows frame 3"),
    "duplicate frames": (untimed(set_cell(1, "frame", "1")), r"frame 1 follows frame 1"),
    "frame zero": (untimed(set_cell(0, "frame", "0")), r"1-based, found 0"),
    "frames and timestamps": (
        repeat_second_row,
        r"line 5: neither frame numbers \(frame 2 follows frame 3\) nor timestamps \(line 5 repeats 0.04 s\)",
    ),
    "short row": (cut_cell, r"line 4 has"),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", list(VIDEO_ERRORS))
def test_video_errors_name_the_file_and_the_problem(tmp_path: Path, case: str, style: str) -> None:
    edit, message = VIDEO_ERRORS[case]
    path = video_with(edit).write(tmp_path / "broken_clip.csv", style)
    with pytest.raises(OpenFaceError, match=rf"broken_clip\.csv.*{message}"):
        read_openface_csv(path)


def test_missing_empty_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(OpenFaceError, match=r"absent\.csv"):
        read_openface_csv(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(OpenFaceError, match=r"empty\.csv.*empty file"):
        read_openface_csv(tmp_path / "empty.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(OpenFaceError, match=r"binary\.csv.*cannot read"):
        read_openface_csv(tmp_path / "binary.csv")


def three_faces() -> list[tuple[np.ndarray, float, np.ndarray | None]]:
    """Faces 0, 1, 2 with confidence 0.8, 0.95, 0.5 and distinct AUs and landmarks."""
    confidences = (0.8, 0.95, 0.5)
    return [(random_aus(1, seed=20 + face)[0], conf, random_landmarks(face)) for face, conf in enumerate(confidences)]


@pytest.mark.parametrize("style", STYLES)
def test_image_variant_reads_aus_and_landmarks(tmp_path: Path, style: str) -> None:
    faces = three_faces()
    path = write_image_csv(tmp_path / "photo.csv", faces, style=style)

    chosen = read_openface_csv(path)
    assert chosen.face_id == 1, "every face has one row, so the most confident one wins"
    np.testing.assert_array_equal(chosen.aus, faces[1][0][None])
    np.testing.assert_array_equal(chosen.frames, [1])
    np.testing.assert_array_equal(chosen.timestamps, [0.0])
    assert chosen.valid.tolist() == [True]
    assert read_openface_csv(path, face_id=2).valid.tolist() == [False]

    default_points = landmarks_2d(path)
    assert default_points.dtype == np.float32 and default_points.shape == (68, 2)
    np.testing.assert_array_equal(default_points, faces[1][2])
    np.testing.assert_array_equal(landmarks_2d(path, face_id=0), faces[0][2])


def test_image_variant_without_landmarks(tmp_path: Path) -> None:
    faces = [(face_aus, conf, None) for face_aus, conf, _ in three_faces()]
    path = write_image_csv(tmp_path / "bare.csv", faces)
    assert landmarks_2d(path) is None
    np.testing.assert_array_equal(read_openface_csv(path, face_id=2).aus, faces[2][0][None])


def test_image_variant_errors(tmp_path: Path) -> None:
    table = image_table(three_faces())
    missing = table.drop_columns("confidence").write(tmp_path / "no_conf.csv")
    with pytest.raises(OpenFaceError, match=r"no_conf\.csv.*'confidence'.*image"):
        read_openface_csv(missing)
    with pytest.raises(OpenFaceError, match=r"no_conf\.csv.*'confidence'.*image"):
        landmarks_2d(missing)
    empty = CsvTable(table.header, []).write(tmp_path / "no_face.csv")
    with pytest.raises(OpenFaceError, match=r"no_face\.csv.*no data rows"):
        read_openface_csv(empty)
    with pytest.raises(OpenFaceError, match=r"photo\.csv.*face 9.*\[0, 1, 2\]"):
        landmarks_2d(table.write(tmp_path / "photo.csv"), face_id=9)
    video = write_video_csv(tmp_path / "clip.csv", random_aus(3, seed=12))
    with pytest.raises(OpenFaceError, match=r"clip\.csv.*image"):
        landmarks_2d(video)
