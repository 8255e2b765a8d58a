"""Live AU estimation from a file or a pipe: PCM chunks with their arrival times in, timed AU frames out.

A :class:`TimedChunk` is a block of PCM and the wall-clock time (``time.perf_counter``) at which it
arrived: when it was read from a pipe, or, for a file replayed in real time, when its last sample is
due. :class:`LiveRun` pushes the chunks through a :class:`StreamingEstimator` and yields each AU frame
with the time its timestamp's audio was captured, so ``emitted - arrival`` is the frame's emission
latency: the algorithmic latency (``StreamingEstimator.latency_ms``) plus the wait for the rest of
the chunk that completes it, plus compute. A chunk's samples are taken as captured at the audio
rate up to its arrival (exact for a live source, which delivers a chunk when its last sample is
recorded), but not before the previous chunk arrived (input delivered faster than real time);
frames past the end of the stream count from its end.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cause_pl.inference.streaming import StreamingEstimator
from cause_pl.media.audio import stream_audio

PCM_FORMATS: dict[str, tuple[str, float]] = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}
"""Raw PCM formats read from a pipe: numpy dtype and the divisor to full scale [-1, 1]."""


@dataclass(frozen=True)
class TimedChunk:
    """PCM (1-D float32) and when it arrived (``time.perf_counter`` seconds)."""

    pcm: np.ndarray
    arrived: float


@dataclass(frozen=True)
class TimedFrame:
    """AU frame ``index`` (timestamp ``index / fps``) and the arrival time of its timestamp's audio."""

    index: int
    aus: np.ndarray
    arrival: float


class ArrivalClock:
    """When each sample was captured, asked in non-decreasing sample order (chunks already passed are dropped)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._chunks: deque[tuple[int, float]] = deque()  # (end sample, arrival time)
        self._previous = -float("inf")  # arrival of the chunk before the first one kept
        self.samples = 0
        self.end_time: float | None = None

    def add(self, count: int, arrived: float) -> None:
        if count > 0:
            self.samples += count
            self._chunks.append((self.samples, arrived))

    def close(self, arrived: float) -> None:
        """The stream ended at ``arrived``: the arrival time of every sample past its end."""
        self.end_time = arrived

    def arrival(self, sample: int) -> float:
        """Capture time of ``sample``: its chunk's arrival less the audio after it, not before the chunk before."""
        while self._chunks and self._chunks[0][0] <= sample:
            self._previous = self._chunks.popleft()[1]
        if self._chunks:
            end, arrived = self._chunks[0]
            return max(arrived - (end - sample) / self.sample_rate, self._previous)
        if self.end_time is None:
            raise ValueError(f"ArrivalClock: sample {sample} has not arrived yet")
        return self.end_time


class LiveRun:
    """Drive ``estimator`` with timed chunks; ``compute_seconds`` sums the time spent in the estimator."""

    def __init__(self, estimator: StreamingEstimator) -> None:
        self.estimator = estimator
        self.clock = ArrivalClock(estimator.layout.sample_rate)
        self.compute_seconds = 0.0

    @property
    def audio_seconds(self) -> float:
        return self.clock.samples / self.estimator.layout.sample_rate

    def frames(self, chunks: Iterable[TimedChunk]) -> Iterator[TimedFrame]:
        """Each frame as soon as the chunks determine it; the rest once ``chunks`` ends."""
        for chunk in chunks:
            self.clock.add(chunk.pcm.shape[0], chunk.arrived)
            yield from self._timed(self.estimator.push, chunk.pcm)
        self.clock.close(time.perf_counter())
        yield from self._timed(self.estimator.finish)

    def _timed(self, call: Callable[..., np.ndarray], *args: np.ndarray) -> Iterator[TimedFrame]:
        started = time.perf_counter()
        rows = call(*args)
        self.compute_seconds += time.perf_counter() - started
        layout = self.estimator.layout
        first = self.estimator.frames_emitted - rows.shape[0]
        for offset, row in enumerate(rows):
            index = first + offset
            yield TimedFrame(index, row, self.clock.arrival(round(index * layout.sample_rate / layout.fps)))


def file_chunks(path: str | Path, sample_rate: int, chunk_samples: int) -> Iterator[np.ndarray]:
    """The audio of ``path`` (any format ``stream_audio`` reads) at ``sample_rate``, in chunks of ``chunk_samples``."""
    pending = np.zeros(0, np.float32)
    for block in stream_audio(path, sample_rate):
        pending = np.concatenate([pending, block.numpy()])
        cut = pending.shape[0] - pending.shape[0] % chunk_samples
        yield from (pending[start : start + chunk_samples] for start in range(0, cut, chunk_samples))
        pending = pending[cut:]
    if pending.shape[0]:
        yield pending


def pipe_chunks(fd: int, pcm: str, chunk_samples: int, source: str = "stdin") -> Iterator[np.ndarray]:
    """Raw mono PCM read from descriptor ``fd`` as it comes, at most ``chunk_samples`` per read.

    A read returns what the pipe holds, so chunks come while the writer is still writing. Input
    ending inside a sample is a ValueError naming ``source``.
    """
    dtype, scale = PCM_FORMATS[pcm]
    width = np.dtype(dtype).itemsize
    pending = b""
    while data := os.read(fd, chunk_samples * width - len(pending)):
        pending += data
        whole = len(pending) - len(pending) % width
        if whole:
            yield np.frombuffer(pending[:whole], dtype).astype(np.float32) / np.float32(scale)
            pending = pending[whole:]
    if pending:
        raise ValueError(f"{source}: the input ended with {len(pending)} byte(s) that are not a whole {pcm} sample")


def timed_chunks(chunks: Iterable[np.ndarray], sample_rate: int, realtime: bool = False) -> Iterator[TimedChunk]:
    """Stamp ``chunks`` with their arrival: now, or with ``realtime`` when their last sample is due.

    In real time each chunk is held until ``start + (its end sample) / sample_rate``, ``start`` being
    when the first chunk was available, and that due time is its arrival.
    """
    start: float | None = None
    end = 0
    for chunk in chunks:
        now = time.perf_counter()
        if not realtime:
            yield TimedChunk(chunk, now)
            continue
        start = now if start is None else start
        end += chunk.shape[0]
        due = start + end / sample_rate
        if due > now:
            time.sleep(due - now)
        yield TimedChunk(chunk, due)


def latency_summary(latencies_ms: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (0, 0 for none)."""
    if not latencies_ms:
        return 0.0, 0.0
    return float(np.median(latencies_ms)), float(np.percentile(latencies_ms, 95))
