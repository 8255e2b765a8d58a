"""Decode any audio or video file into a mono float32 waveform at a chosen sample rate, whole or streamed.

``stream_audio`` reads wav/flac/ogg with soundfile and everything else (mp3, m4a, aac, mp4, mkv, ...)
with PyAV, block by block (:mod:`cause_pl.media.decoders`), mixes each block down to mono and
resamples it with :class:`~cause_pl.media.resample.StreamResampler`: memory is bounded by the block
size for any length and any sample rate, and the concatenated blocks equal resampling the whole file
at once (up to float round-off). ``load_audio`` is the concatenation. An unusable file raises
:class:`AudioError` naming the file, at the latest when the block that shows the problem is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from cause_pl.checks import positive_int
from cause_pl.media.decoders import ChannelBlocks, mix_down, pyav_blocks, soundfile_blocks
from cause_pl.media.resample import StreamResampler

SOUNDFILE_SUFFIXES: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".oga"})
"""Read with soundfile (exact, fast); other files, and any soundfile rejects, go to PyAV."""

BLOCK_SAMPLES = 1 << 20
"""Samples (over all channels) decoded per block: 4 MB of float32."""

MIN_SAMPLE_RATE = 4000
"""Files declaring a lower rate are refused: no speech codec goes below it, and resampling 64 KB at
1 Hz to 16 kHz would make 9 hours of samples."""

MAX_CHANNELS = 64


class AudioError(ValueError):
    """An audio file that cannot be used: missing, undecodable, without audio, or empty."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode ``path`` to a float32 mono 1-D tensor at ``sample_rate`` (channels averaged)."""
    return torch.cat(list(stream_audio(path, sample_rate)))


def stream_audio(
    path: str | Path, sample_rate: int = 16000, block_samples: int = BLOCK_SAMPLES
) -> Iterator[torch.Tensor]:
    """Mono float32 1-D blocks of ``path`` at ``sample_rate`` whose concatenation is the whole file.

    Blocks come as they are decoded (some may be empty); at least one sample in all, else AudioError.
    """
    sample_rate = positive_int("sample_rate", sample_rate)
    block_samples = positive_int("block_samples", block_samples)
    path = _check_file(Path(path))
    blocks, failures = _open(path, block_samples)
    resampler: StreamResampler | None = None
    produced = 0
    try:
        for channels, rate in blocks:
            if resampler is None:
                resampler = StreamResampler(_check_rate(path, rate, channels.shape[0]), sample_rate)
            if not np.isfinite(channels).all():
                raise AudioError(path, "audio contains NaN or infinite samples")
            produced += channels.shape[1]
            yield resampler.push(torch.from_numpy(mix_down(channels)))
    except sf.SoundFileError as error:  # a read failing part-way; PyAV's failures are handled in _pyav
        raise AudioError(path, f"not decodable as audio (soundfile: {_reason(error)})") from error
    if resampler is None or produced == 0:
        if failures:  # soundfile rejected it and FFmpeg, trusting the suffix, found nothing: not an empty file
            raise AudioError(path, f"not decodable as audio ({'; '.join([*failures, 'PyAV: decoded no samples'])})")
        raise AudioError(path, "empty: the audio stream holds zero samples")
    yield resampler.flush()


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise AudioError(path, "no such file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return path


def _check_rate(path: Path, rate: int, channels: int) -> int:
    """The file's sample rate, if it and the channel count are plausible for audio."""
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(path, f"declares a sample rate of {rate} Hz, below {MIN_SAMPLE_RATE} Hz: not usable audio")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(path, f"declares {channels} channels (1..{MAX_CHANNELS} supported)")
    return rate


def _open(path: Path, block_samples: int) -> tuple[ChannelBlocks, list[str]]:
    """A block generator for ``path`` and why soundfile refused it, if it did."""
    failures: list[str] = []
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            blocks, rate, channels = soundfile_blocks(path, block_samples)
        except (sf.SoundFileError, RuntimeError) as error:
            failures.append(f"soundfile: {_reason(error)}")
        else:
            _check_rate(path, rate, channels)  # before any block is read
            return blocks, failures
    return _pyav(path, block_samples, failures), failures


def _pyav(path: Path, block_samples: int, failures: list[str]) -> ChannelBlocks:
    try:
        yield from pyav_blocks(path, block_samples)
    except av.error.FFmpegError as error:
        raise AudioError(
            path, f"not decodable as audio ({'; '.join([*failures, f'PyAV: {_reason(error)}'])})"
        ) from None
    except ValueError as error:  # no audio stream, or a sample rate that changes part-way
        raise AudioError(path, str(error)) from None


def _reason(error: Exception) -> str:
    """The short text of a decoder's exception."""
    if isinstance(error, av.error.FFmpegError):
        return str(error.strerror or error)
    return str(getattr(error, "error_string", error)).rstrip(".")
