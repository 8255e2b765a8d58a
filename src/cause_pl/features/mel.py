"""The log-mel frontend: the one feature extractor of every stage (recipes, training, inference).

:func:`cause_pl.media.audio.load_audio` decodes any audio or video file at the frontend's sample
rate; ``MelFrontend`` turns waveforms into log-mel frames at 25 fps (docs/design.md, "Frames and time"): frame
``i`` is centred on sample ``i * hop`` (time ``i / fps``), so ``num_samples`` samples give
``1 + num_samples // hop`` frames and frame ``i`` pairs with OpenFace row ``i + 1``.
``MelConfig.to_dict`` is what shard indexes and checkpoints store, so a model and a dataset built
with different frontends can be told apart by comparing configs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torchaudio

from cause_pl.checks import finite_float, positive_int
from cause_pl.media.audio import load_audio

LARGE_PEAK = 2.0**32
"""Waveforms whose peak exceeds this are scaled down by a power of two before the float32 power
spectrum (which overflows for peaks near 1e16) and the scale is added back in the log domain;
waveforms below it take the plain path, so ordinary audio's features are unchanged bit for bit."""

MEL_SCALE = "slaney"
"""Slaney mel scale with Slaney (area) normalisation, as librosa's default filterbank, so features
match librosa-based pipelines. Fixed, not a MelConfig field: changing it changes every feature."""


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
            object.__setattr__(self, name, positive_int(f"MelConfig.{name}", getattr(self, name)))
        for name in ("f_min", "f_max", "log_floor"):
            object.__setattr__(self, name, finite_float(f"MelConfig.{name}", getattr(self, name)))
        if self.sample_rate % self.fps:
            raise ValueError(
                f"MelConfig.sample_rate ({self.sample_rate}) must be a multiple of fps "
                f"({self.fps}) so that one frame hop is a whole number of samples"
            )
        if self.win_length > self.n_fft:
            raise ValueError(f"MelConfig.win_length ({self.win_length}) must not exceed n_fft ({self.n_fft})")
        if not 0.0 <= self.f_min < self.f_max:
            raise ValueError(f"MelConfig needs 0 <= f_min < f_max, got f_min={self.f_min}, f_max={self.f_max}")
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
            raise ValueError(f"unknown MelConfig keys {unknown}; known: {sorted(names)} and hop_length")
        config = cls(**{name: value for name, value in data.items() if name in names})
        if "hop_length" in data and data["hop_length"] != config.hop_length:
            raise ValueError(
                f"MelConfig hop_length {data['hop_length']!r} contradicts sample_rate // fps = {config.hop_length}"
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
                f"MelFrontend needs a waveform (..., samples) with >= 1 sample, got shape {tuple(wave.shape)}"
            )
        if not wave.is_floating_point():
            raise ValueError(f"MelFrontend needs a floating-point waveform, got {wave.dtype}")
        peak = float(wave.detach().abs().max())
        if not math.isfinite(peak):
            raise ValueError("MelFrontend needs a finite waveform, got NaN or infinite samples")
        if peak <= LARGE_PEAK:
            power = self.mel(wave.float())
            return torch.log(power.clamp_min(self.config.log_floor)).transpose(-1, -2)
        # log(max(mel, floor)) = max(log(mel * 2^-2e) + 2e ln 2, log floor), computed on wave * 2^-e.
        exponent = math.frexp(peak)[1]
        scaled_power = self.mel(torch.ldexp(wave, torch.tensor(-exponent, device=wave.device)).float())
        log_mel = torch.log(scaled_power) + 2 * exponent * math.log(2.0)
        return log_mel.clamp_min(math.log(self.config.log_floor)).transpose(-1, -2)


def log_mel_from_file(path: str | Path, frontend: MelFrontend | None = None) -> torch.Tensor:
    """Log-mel ``(frames, n_mels)`` of an audio/video file, on the frontend's device."""
    frontend = frontend if frontend is not None else MelFrontend()
    wave = load_audio(path, frontend.config.sample_rate)
    device = next(frontend.buffers()).device
    with torch.no_grad():
        return frontend(wave.to(device))
