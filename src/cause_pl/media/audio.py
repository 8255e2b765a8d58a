"""Decode any audio or video file into a mono float32 waveform at a chosen sample rate.

``load_audio`` reads wav/flac/ogg with soundfile and everything else (mp3, m4a, aac, mp4, mkv, ...)
with PyAV, mixes down to mono and resamples once to the requested rate; an unusable file raises
:class:`AudioError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio

from cause_pl.checks import positive_int

SOUNDFILE_SUFFIXES: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".oga"})
"""Read with soundfile (exact, fast); other files, and any soundfile rejects, go to PyAV."""


class AudioError(ValueError):
    """An audio file that cannot be used: missing, undecodable, without audio, or empty."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode ``path`` to a float32 mono 1-D tensor at ``sample_rate`` (channels averaged)."""
    sample_rate = positive_int("sample_rate", sample_rate)
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    channels, native_rate = _decode(path)
    if channels.shape[1] == 0:
        raise AudioError(path, "empty: the audio stream holds zero samples")
    if not np.isfinite(channels).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    wave = torch.from_numpy(channels.mean(axis=0, dtype=np.float32))
    if native_rate != sample_rate:
        wave = torchaudio.functional.resample(wave, native_rate, sample_rate)
    return wave.contiguous()


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """All channels as float32 ``(channels, samples)`` and the file's own sample rate."""
    failures: list[str] = []
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            return _decode_soundfile(path)
        except (sf.SoundFileError, RuntimeError) as error:
            failures.append(f"soundfile: {str(getattr(error, 'error_string', error)).rstrip('.')}")
    try:
        channels, rate = _decode_pyav(path)
    except av.error.FFmpegError as error:
        failures.append(f"PyAV: {error.strerror or error}")
    else:
        if channels.shape[1] or not failures:
            return channels, rate
        # soundfile rejected it and FFmpeg, trusting the suffix, found nothing: not an empty file.
        failures.append("PyAV: decoded no samples")
    raise AudioError(path, f"not decodable as audio ({'; '.join(failures)})")


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), rate


def _decode_pyav(path: Path) -> tuple[np.ndarray, int]:
    """First audio stream, converted to float planar.

    AAC pads its last frame; when the container declares a duration, samples past it (less than
    one frame) are that padding and are cut, so durations match what was encoded.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            kinds: list[str] = sorted({stream.type for stream in container.streams}) or ["none"]
            raise AudioError(path, f"no audio stream (streams: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        to_float_planar = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = stream.rate
        last_frame_samples = 0
        for frame in container.decode(stream):
            rate, last_frame_samples = frame.sample_rate, frame.samples
            chunks.extend(converted.to_ndarray() for converted in to_float_planar.resample(frame))
        chunks.extend(converted.to_ndarray() for converted in to_float_planar.resample(None))
        declared = round(stream.duration * stream.time_base * rate) if stream.duration and stream.time_base else 0
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), rate
    channels = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if 0 < declared < channels.shape[1] <= declared + last_frame_samples:
        channels = channels[:, :declared]
    return channels, rate
