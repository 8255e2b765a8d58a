"""Audio decoders that yield a file's samples in bounded blocks.

Each decoder is a generator of ``(channels, sample rate)`` pairs, ``channels`` float32 of shape
``(C, n)``: the rate comes with the samples because a container's header may disagree with what its
decoder produces (HE-AAC declares half its output rate). Blocks hold about ``block_samples`` samples
over all channels, so memory never depends on the length of the file or on sizes a header declares.
:func:`mix_down` averages the channels in float64, so huge finite samples cannot overflow to infinity.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soundfile as sf

ChannelBlocks = Iterator[tuple[np.ndarray, int]]


def mix_down(channels: np.ndarray) -> np.ndarray:
    """Mono float32 ``(n,)`` from ``(C, n)``: the mean of the channels, accumulated in float64."""
    if channels.shape[0] == 1:
        return np.ascontiguousarray(channels[0], dtype=np.float32)
    return channels.mean(axis=0, dtype=np.float64).astype(np.float32)


def soundfile_blocks(path: Path, block_samples: int) -> tuple[ChannelBlocks, int, int]:
    """Blocks of a file libsndfile reads (wav, flac, ogg), its sample rate and channel count.

    Opening happens here, so a file libsndfile rejects raises at once (``sf.SoundFileError``).
    """
    handle = sf.SoundFile(str(path))
    rate, channels = int(handle.samplerate), int(handle.channels)

    def blocks() -> ChannelBlocks:
        with handle:
            frames = max(1, block_samples // max(channels, 1))
            while True:
                data = handle.read(frames, dtype="float32", always_2d=True)
                if not len(data):
                    return
                yield np.ascontiguousarray(data.T), rate

    return blocks(), rate, channels


def pyav_blocks(path: Path, block_samples: int) -> ChannelBlocks:
    """Blocks of the first audio stream of any container FFmpeg opens.

    AAC pads its last frame; when the container declares a duration, samples past it (less than one
    frame) are that padding and are cut, so durations match what was encoded. The last decoded
    frame is therefore held back until the stream ends.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            kinds: list[str] = sorted({str(stream.type) for stream in container.streams}) or ["none"]
            raise ValueError(f"no audio stream (streams: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        rate = 0

        def planar_frames() -> Iterator[np.ndarray]:
            """Every decoded frame as float planar ``(C, n)``, the converter flushed at the end."""
            nonlocal rate
            to_float_planar = av.AudioResampler(format="fltp")
            for frame in container.decode(stream):
                if rate and frame.sample_rate != rate:
                    raise ValueError(f"the sample rate changes inside the stream ({rate} -> {frame.sample_rate} Hz)")
                rate = frame.sample_rate
                yield from (converted.to_ndarray() for converted in to_float_planar.resample(frame))
            yield from (converted.to_ndarray() for converted in to_float_planar.resample(None))

        pending: list[np.ndarray] = []
        pending_samples = emitted = 0
        held: np.ndarray | None = None
        for planar in planar_frames():
            if held is not None:
                pending.append(held)
                pending_samples += held.size
            held = planar
            if pending_samples >= block_samples:
                block = np.concatenate(pending, axis=1)
                emitted += block.shape[1]
                pending, pending_samples = [], 0
                yield block, rate
        if held is None:
            return
        declared = round(stream.duration * stream.time_base * rate) if stream.duration and stream.time_base else 0
    total = emitted + sum(part.shape[1] for part in pending) + held.shape[1]
    if 0 < declared < total <= declared + held.shape[1]:
        held = held[:, : held.shape[1] - (total - declared)]
    pending.append(held)
    yield np.concatenate(pending, axis=1), rate
