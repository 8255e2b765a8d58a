"""AU CSVs in OpenFace's layout: read back exactly, streamed to a stream, written atomically to a path."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from cause_pl.openface import writer
from cause_pl.openface.reader import read_openface_csv
from cause_pl.openface.writer import CSV_COLUMNS, write_openface_style_csv


def aus(frames: int, offset: float = 0.0) -> np.ndarray:
    return (np.arange(frames * NUM_AUS, dtype=np.float64).reshape(frames, NUM_AUS) % 5 + offset) / 2


def test_path_and_stream_give_the_same_text(tmp_path):
    stream = io.StringIO()
    write_openface_style_csv(aus(4), 25, stream)
    path = tmp_path / "new" / "aus.csv"
    write_openface_style_csv(aus(4), 25, path)
    assert path.read_text(encoding="utf-8") == stream.getvalue()
    assert stream.getvalue().splitlines()[0] == ", ".join(CSV_COLUMNS)
    assert sorted(p.name for p in path.parent.iterdir()) == ["aus.csv"]
    track = read_openface_csv(path)
    assert np.array_equal(track.aus, aus(4).astype(np.float32)) and track.valid.all()
    assert track.frames.tolist() == [1, 2, 3, 4]


def test_failed_write_keeps_the_previous_csv(tmp_path, monkeypatch):
    path = tmp_path / "aus.csv"
    write_openface_style_csv(aus(6), 25, path)
    previous = path.read_bytes()
    real_write_rows = writer._write_rows

    def two_rows_then_disk_full(values, valid, fps, stream, decimals, columns):
        real_write_rows(values[:2], valid[:2], fps, stream, decimals, columns)
        stream.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_write_rows", two_rows_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_openface_style_csv(aus(9, offset=0.25), 25, path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aus.csv"]


def test_a_complete_write_replaces_the_previous_csv(tmp_path):
    path = tmp_path / "aus.csv"
    write_openface_style_csv(aus(6), 25, path)
    write_openface_style_csv(aus(3), 25, path)
    assert len(path.read_text().splitlines()) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aus.csv"]


def test_other_targets_are_written_under_their_own_columns(tmp_path):
    path = tmp_path / "emotions.csv"
    values = np.full((3, 2), 0.5)
    write_openface_style_csv(values, 25, path, columns=("happiness", "sadness"))
    lines = path.read_text().splitlines()
    assert lines[0] == "frame, face_id, timestamp, confidence, success, happiness, sadness"
    assert lines[1].endswith("0.500, 0.500") and len(lines) == 4
    with pytest.raises(ValueError, match=r"shape \(frames, 3\)"):
        write_openface_style_csv(values, 25, path, columns=("a", "b", "c"))
