"""Alignment by time: OpenFace tracks at any frame rate resampled onto 25 fps mel frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import AU_COLUMNS, NUM_AUS
from cause_pl.openface.reader import AlignmentError, OpenFaceTrack, align_to_frames, read_openface_csv
from tests.builders.openface_csv import OPENFACE_LAYOUT, as_openface, video_table

RATES = (15.0, 24.0, 25.0, 29.97, 30.0, 60.0)
SECONDS = 4.0
STEP_AT, SPIKE_AT = 1.52, 2.6
"""A step in AU01 and a one-row spike in AU12, in seconds (mel frames 38 and 65)."""
STEP, SPIKE = AU_COLUMNS.index("AU01_r"), AU_COLUMNS.index("AU12_r")


def event_track(tmp_path: Path, rate: float, keep=None, success=None, timestamps: bool = True) -> OpenFaceTrack:
    """A ``SECONDS`` long track at ``rate`` as OpenFace 2.2.0 prints it, with the step and the spike.

    ``keep(times)`` and ``success(times)`` (boolean masks over the row times) drop rows or mark them failed.
    """
    frames = np.arange(1, round(SECONDS * rate) + 1)
    times = (frames - 1) / rate
    kept = np.ones(frames.size, bool) if keep is None else keep(times)
    aus = np.full((frames.size, NUM_AUS), 1.0)
    aus[:, STEP] = np.where(times >= STEP_AT, 4.0, 0.5)
    aus[np.argmin(np.abs(times - SPIKE_AT)), SPIKE] = 5.0
    failed = np.zeros(frames.size, bool) if success is None else ~success(times)
    table = as_openface(video_table(aus[kept], frames=frames[kept], fps=rate, success=(~failed[kept]).astype(int)))
    if not timestamps:
        table = table.drop_columns("timestamp")
    return read_openface_csv(table.write(tmp_path / f"clip_{rate:g}.csv", OPENFACE_LAYOUT))


def mel_frames(rate: float) -> int:
    """Mel frames of audio as long as a ``SECONDS`` long video at ``rate`` (whole frames)."""
    return 1 + int(round(SECONDS * rate) / rate * 25.0)


@pytest.mark.parametrize("rate", RATES)
def test_an_event_lands_on_its_mel_frame(tmp_path: Path, rate: float) -> None:
    track = event_track(tmp_path, rate)
    aus, valid = align_to_frames(track, mel_frames(rate))

    assert valid.all() and aus.shape[0] >= 99
    first_high = int(np.argmax(aus[:, STEP] >= 2.25))
    assert abs(first_high - STEP_AT * 25) <= 1, first_high
    spike_row_time = track.timestamps[np.argmax(track.aus[:, SPIKE])]
    assert abs(int(np.argmax(aus[:, SPIKE])) - spike_row_time * 25) <= 1
    assert abs(int(np.argmax(aus[:, SPIKE])) - SPIKE_AT * 25) <= 1
    assert aus[:, STEP].min() >= 0.5 - 1e-6 and aus[:, STEP].max() <= 4.0 + 1e-6


@pytest.mark.parametrize("rate", RATES)
def test_failed_and_missing_rows_stay_invalid(tmp_path: Path, rate: float) -> None:
    """Rows failed in [2.0, 2.5) s and absent in [3.0, 3.3) s: no mel frame there is valid or invented."""
    track = event_track(
        tmp_path,
        rate,
        keep=lambda times: (times < 3.0) | (times >= 3.3),
        success=lambda times: (times < 2.0) | (times >= 2.5),
    )
    aus, valid = align_to_frames(track, mel_frames(rate))
    times = np.arange(len(valid)) / 25.0
    period = 1.0 / rate + 1e-3

    for start, end in ((2.0, 2.5), (3.0, 3.3)):
        inside = (times >= start) & (times < end)
        assert inside.any() and not valid[inside].any() and not aus[inside].any(), (start, end)
        assert valid[(times > start - 1.5 * period) & (times <= start - period)].all()
        assert valid[(times >= end + period) & (times < end + 1.5 * period)].all()
    assert valid.sum() >= len(valid) - 0.8 * 25 - 4 * 25 * period


@pytest.mark.parametrize("rate", RATES)
def test_a_duration_mismatch_is_rejected_with_both_durations(tmp_path: Path, rate: float) -> None:
    track = event_track(tmp_path, rate)
    frames = mel_frames(rate)
    for extra in (-1, 1):
        align_to_frames(track, frames + extra)
    with pytest.raises(AlignmentError, match=r"clip_.*covers 4\.0\d\d s .* features cover 4\.1\d\d s \(103 frames"):
        align_to_frames(track, 103)
    with pytest.raises(AlignmentError, match=r"covers 4\.0\d\d s .* features cover 3\.8\d\d s \(97 frames"):
        align_to_frames(track, 97)


def test_the_track_rate_can_be_given(tmp_path: Path) -> None:
    """Without timestamps the rate is the features' unless ``source_fps`` says otherwise."""
    track = event_track(tmp_path, 30.0, timestamps=False)
    with pytest.raises(AlignmentError, match=r"covers 4\.800 s"):
        align_to_frames(track, mel_frames(30.0))
    aus, valid = align_to_frames(track, mel_frames(30.0), source_fps=30.0)
    assert valid.all() and abs(int(np.argmax(aus[:, SPIKE])) - SPIKE_AT * 25) <= 1


def test_other_feature_rates(tmp_path: Path) -> None:
    track = event_track(tmp_path, 29.97)
    aus, valid = align_to_frames(track, 1 + int(120 / 29.97 * 50), fps=50.0)
    assert valid.all() and abs(int(np.argmax(aus[:, SPIKE])) - SPIKE_AT * 50) <= 1
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        align_to_frames(track, 100, fps=0.0)
    with pytest.raises(ValueError, match="source_fps must be a finite number > 0"):
        align_to_frames(track, 100, source_fps=float("nan"))


@pytest.mark.parametrize("printed", [False, True], ids=["exact", "openface"])
def test_25_fps_tracks_map_row_to_frame_bit_for_bit(tmp_path: Path, printed: bool) -> None:
    """Row ``frame = i + 1`` becomes mel frame ``i``, as before alignment went by time: gaps and all."""
    rng = np.random.default_rng(0)
    frames = np.sort(rng.choice(np.arange(3, 301), size=250, replace=False))
    aus = rng.uniform(0.0, 5.0, (frames.size, NUM_AUS))
    table = video_table(aus, frames=frames, success=(rng.random(frames.size) > 0.1).astype(int), extra_columns=False)
    track = read_openface_csv((as_openface(table) if printed else table).write(tmp_path / "clip.csv"))

    last = int(frames[-1])
    expected, expected_valid = np.zeros((last, NUM_AUS), np.float32), np.zeros(last, bool)
    expected[frames - 1], expected_valid[frames - 1] = track.aus, track.valid
    expected[~expected_valid] = 0.0
    for num_frames in (last - 2, last, last + 2):
        aligned, valid = align_to_frames(track, num_frames)
        length = min(num_frames, last)
        np.testing.assert_array_equal(aligned, expected[:length])
        np.testing.assert_array_equal(valid, expected_valid[:length])
