"""DFTLogMel: the matrix-product frontend equals MelFrontend, whole-signal and frame by frame."""

from __future__ import annotations

import pytest
import torch

from cause_pl.features.dft_mel import DFTLogMel
from cause_pl.features.mel import MelConfig, MelFrontend

CONFIGS = [
    MelConfig(),
    MelConfig(n_fft=1024, win_length=800),
    MelConfig(sample_rate=8000, n_fft=400, win_length=400, n_mels=40, f_max=4000.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "short-window", "8khz"])
@pytest.mark.parametrize("samples", [1, 319, 640, 5_000, 48_123])
def test_whole_signal_equals_the_torchaudio_frontend(config: MelConfig, samples: int) -> None:
    wave = 0.3 * torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    expected = MelFrontend(config)(wave)
    got = DFTLogMel(config)(wave)
    assert got.shape == expected.shape == (config.num_frames(samples), config.n_mels)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "short-window", "8khz"])
def test_one_window_gives_one_frame_of_the_whole_signal(config: MelConfig) -> None:
    """Frame i reads the win_length samples from i*hop - n_fft//2 + window_offset of the zero-padded signal."""
    wave = 0.3 * torch.randn(20_000, generator=torch.Generator().manual_seed(1))
    frontend = DFTLogMel(config)
    padded = torch.nn.functional.pad(wave, (config.n_fft // 2, config.n_fft // 2))
    starts = [i * config.hop_length + frontend.window_offset for i in range(config.num_frames(20_000))]
    windows = torch.stack([padded[start : start + config.win_length] for start in starts])
    torch.testing.assert_close(frontend.frames(windows), frontend(wave), rtol=0, atol=2e-5)


def test_silence_sits_on_the_log_floor() -> None:
    config = MelConfig()
    out = DFTLogMel(config)(torch.zeros(3_000))
    assert torch.equal(out, torch.full_like(out, torch.log(torch.tensor(config.log_floor)).item()))
