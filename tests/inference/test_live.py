"""ArrivalClock: when a live source captured each sample, from the arrival times of its chunks."""

from __future__ import annotations

import pytest

from cause_pl.inference.live import ArrivalClock


def test_real_time_chunks_give_each_sample_its_own_time() -> None:
    """A live source delivers a chunk when its last sample is recorded: sample s at start + s / rate."""
    clock, start = ArrivalClock(sample_rate=1000), 50.0
    for end in range(10, 101, 10):
        clock.add(10, start + end / 1000)
    for sample in (0, 5, 9, 10, 37, 99):
        assert clock.arrival(sample) == pytest.approx(start + sample / 1000)


def test_faster_than_real_time_input_is_not_dated_before_the_previous_chunk() -> None:
    clock = ArrivalClock(sample_rate=1000)
    clock.add(100, 1.0)
    clock.add(100, 1.001)  # 100 ms of audio 1 ms later
    assert clock.arrival(50) == pytest.approx(1.0 - 0.05)  # the first chunk: nothing earlier to bound it
    assert clock.arrival(150) == pytest.approx(1.0)


def test_samples_past_the_end_count_from_the_end_of_the_stream() -> None:
    clock = ArrivalClock(sample_rate=1000)
    clock.add(10, 2.0)
    with pytest.raises(ValueError, match="has not arrived"):
        clock.arrival(10)
    clock.close(3.5)
    assert clock.arrival(12) == 3.5
