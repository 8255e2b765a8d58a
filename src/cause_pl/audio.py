"""Audio decoding and the log-mel frontend: the one feature extractor of every stage.

``load_audio`` turns any audio or video file into a mono float32 waveform at the frontend's sample
rate; ``MelFrontend`` turns waveforms into log-mel frames at 25 fps (DESIGN.md section 3): frame
``i`` is centred on sample ``i * hop`` (time ``i / fps``), so ``num_samples`` samples give
``1 + num_samples // hop`` frames and frame ``i`` pairs with OpenFace row ``i + 1``.
``MelConfig.to_dict`` is what shard indexes and checkpoints store, so a model and a dataset built
with different frontends can be told apart by comparing configs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Mapping

import av
import numpy as np
import soundfile as sf
import torch
import torchaudio

SOUNDFILE_SUFFIXES: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".oga"})
"""Read with soundfile (exact, fast); other files, and any soundfile rejects, go to PyAV."""

MEL_SCALE = "slaney"
"""Slaney mel scale with Slaney (area) normalisation, as librosa's default filterbank, so features
match librosa-based pipelines. Fixed, not a MelConfig field: changing it changes every feature."""


class AudioError(ValueError):
    """An audio file that cannot be used: missing, undecodable, without audio, or empty."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode ``path`` to a float32 mono 1-D tensor at ``sample_rate`` (channels averaged)."""
    sample_rate = _positive_int("sample_rate", sample_rate)
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
            kinds = sorted({stream.type for stream in container.streams}) or ["none"]
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
        declared = round(stream.duration * stream.time_base * rate) if stream.duration else 0
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), rate
    channels = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if 0 < declared < channels.shape[1] <= declared + last_frame_samples:
        channels = channels[:, :declared]
    return channels, rate


def _positive_int(name: str, value: Any) -> int:
    """``value`` as an int (numpy and JSON ints accepted); bools and floats are rejected."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MelConfig:
    """Log-mel frontend parameters; frames are ``sample_rate // fps`` samples apart.

    ``log_floor`` clamps mel power before the natural log: ``log(max(mel, log_floor))``.
    """

    sample_rate: int = 16000
    fps: int = 25
    n_fft: int = 1280
    win_length: int = 1280
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "fps", "n_fft", "win_length", "n_mels"):
            object.__setattr__(self, name, _positive_int(f"MelConfig.{name}", getattr(self, name)))
        for name in ("f_min", "f_max", "log_floor"):
            object.__setattr__(self, name, _finite_float(f"MelConfig.{name}", getattr(self, name)))
        if self.sample_rate % self.fps:
            raise ValueError(
                f"MelConfig.sample_rate ({self.sample_rate}) must be a multiple of fps "
                f"({self.fps}) so that one frame hop is a whole number of samples"
            )
        if self.win_length > self.n_fft:
            raise ValueError(
                f"MelConfig.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})"
            )
        if not 0.0 <= self.f_min < self.f_max:
            raise ValueError(
                f"MelConfig needs 0 <= f_min < f_max, got f_min={self.f_min}, f_max={self.f_max}"
            )
        if self.f_max > self.sample_rate / 2:
            raise ValueError(
                f"MelConfig.f_max ({self.f_max}) is above the Nyquist frequency "
                f"({self.sample_rate / 2}) of sample_rate {self.sample_rate}"
            )
        if self.log_floor <= 0.0:
            raise ValueError(f"MelConfig.log_floor must be > 0, got {self.log_floor}")

    @property
    def hop_length(self) -> int:
        """Samples between frame centres."""
        return self.sample_rate // self.fps

    def num_frames(self, num_samples: int) -> int:
        """Frames the frontend makes from ``num_samples`` samples (centred frames)."""
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        return 1 + num_samples // self.hop_length

    def to_dict(self) -> dict[str, int | float]:
        """JSON-safe fields plus the derived ``hop_length`` (for people reading index.json)."""
        return {**asdict(self), "hop_length": self.hop_length}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MelConfig:
        """Inverse of ``to_dict``; missing fields take defaults, unknown keys are an error."""
        names = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - names - {"hop_length"})
        if unknown:
            raise ValueError(
                f"unknown MelConfig keys {unknown}; known: {sorted(names)} and hop_length"
            )
        config = cls(**{name: value for name, value in data.items() if name in names})
        if "hop_length" in data and data["hop_length"] != config.hop_length:
            raise ValueError(
                f"MelConfig hop_length {data['hop_length']!r} contradicts "
                f"sample_rate // fps = {config.hop_length}"
            )
        return config


class MelFrontend(torch.nn.Module):
    """Waveform ``(..., samples)`` -> log-mel ``(..., frames, n_mels)`` float32.

    Power spectrogram of Hann-windowed frames centred every hop (zero padding at the edges, so
    any length >= 1 works), Slaney mel filterbank, natural log with a floor. The window and
    filterbank are buffers, so ``.to(device)`` moves them.
    """

    def __init__(self, config: MelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MelConfig()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.config.sample_rate,
            n_fft=self.config.n_fft,
            win_length=self.config.win_length,
            hop_length=self.config.hop_length,
            f_min=self.config.f_min,
            f_max=self.config.f_max,
            n_mels=self.config.n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
            norm=MEL_SCALE,
            mel_scale=MEL_SCALE,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim < 1 or wave.shape[-1] < 1:
            raise ValueError(
                "MelFrontend needs a waveform (..., samples) with >= 1 sample, "
                f"got shape {tuple(wave.shape)}"
            )
        if not wave.is_floating_point():
            raise ValueError(f"MelFrontend needs a floating-point waveform, got {wave.dtype}")
        power = self.mel(wave.float())
        return torch.log(power.clamp_min(self.config.log_floor)).transpose(-1, -2)


def log_mel_from_file(path: str | Path, frontend: MelFrontend | None = None) -> torch.Tensor:
    """Log-mel ``(frames, n_mels)`` of an audio/video file, on the frontend's device."""
    frontend = frontend if frontend is not None else MelFrontend()
    wave = load_audio(path, frontend.config.sample_rate)
    device = next(frontend.buffers()).device
    with torch.no_grad():
        return frontend(wave.to(device))
