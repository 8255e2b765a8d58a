"""The log-mel frontend as matrix products: the form that exports to ONNX and runs one frame at a time.

``DFTLogMel`` computes what :class:`cause_pl.features.mel.MelFrontend` computes (same frames, same
window, same Slaney filterbank, same log floor) with a real DFT written as one matrix of windowed
cosines and sines: ``forward`` convolves it over a whole waveform, ``frames`` applies it to single
analysis windows (a stream's frames), each just the ``win_length`` samples the window weights. It
equals ``MelFrontend`` up to float32 round-off for waveforms whose peak is at most ``LARGE_PEAK``
(all PCM audio); ``MelFrontend``'s rescaling of larger peaks is not part of it.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn

from cause_pl.features.mel import MEL_SCALE, MelConfig


def dft_basis(config: MelConfig) -> Tensor:
    """(n_fft, 2 * bins) float64: the Hann-windowed cosines then sines of the one-sided DFT.

    The window is ``win_length`` long and centred in ``n_fft``, as ``torch.stft`` places it.
    """
    bins = config.n_fft // 2 + 1
    window = torch.zeros(config.n_fft, dtype=torch.float64)
    left = (config.n_fft - config.win_length) // 2
    window[left : left + config.win_length] = torch.hann_window(config.win_length, dtype=torch.float64)
    angles = (
        2 * math.pi * torch.outer(torch.arange(config.n_fft, dtype=torch.float64), torch.arange(bins)) / config.n_fft
    )
    return torch.cat([window[:, None] * torch.cos(angles), window[:, None] * torch.sin(angles)], dim=1)


class DFTLogMel(nn.Module):
    """Log-mel of whole waveforms (``forward``) or of single analysis windows (``frames``), float32."""

    basis: Tensor
    filterbank: Tensor

    def __init__(self, config: MelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else MelConfig()
        bins = self.config.n_fft // 2 + 1
        self.register_buffer("basis", dft_basis(self.config).float(), persistent=False)
        filterbank = torchaudio.functional.melscale_fbanks(
            bins,
            self.config.f_min,
            self.config.f_max,
            self.config.n_mels,
            self.config.sample_rate,
            norm=MEL_SCALE,
            mel_scale=MEL_SCALE,
        )
        self.register_buffer("filterbank", filterbank.float(), persistent=False)

    @property
    def window_offset(self) -> int:
        """Where the ``win_length`` weighted samples start within the ``n_fft`` frame (centred, as torch.stft)."""
        return (self.config.n_fft - self.config.win_length) // 2

    def frames(self, windows: Tensor) -> Tensor:
        """Analysis windows ``(..., win_length)`` of raw samples -> log-mel ``(..., n_mels)``.

        Frame ``i``'s window is the signal from ``i * hop - n_fft // 2 + window_offset`` on (zero before 0).
        """
        start = self.window_offset
        return self._log_mel(windows @ self.basis[start : start + self.config.win_length])

    def forward(self, wave: Tensor) -> Tensor:
        """Waveform ``(samples,)`` -> ``(frames, n_mels)``: frames centred every hop, zero outside the signal."""
        half = self.config.n_fft // 2
        padded = nn.functional.pad(wave[None, None], (half, half))
        spectra = nn.functional.conv1d(padded, self.basis.T[:, None, :], stride=self.config.hop_length)
        return self._log_mel(spectra[0].T)

    def _log_mel(self, spectra: Tensor) -> Tensor:
        """Cosine and sine coefficients ``(..., 2 * bins)`` -> log of the mel power, floored."""
        real, imaginary = spectra.chunk(2, dim=-1)
        power = real.square() + imaginary.square()
        return torch.log((power @ self.filterbank).clamp_min(self.config.log_floor))
