"""StreamResampler: pieces of any size give torchaudio's whole-signal result."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from cause_pl.media.resample import StreamResampler


def resample_in_pieces(signal: torch.Tensor, orig: int, new: int, piece: int) -> torch.Tensor:
    resampler = StreamResampler(orig, new)
    parts = [resampler.push(signal[start : start + piece]) for start in range(0, signal.shape[0], piece)]
    return torch.cat([*parts, resampler.flush()])


@pytest.mark.parametrize(
    ("orig", "new"), [(48000, 16000), (44100, 16000), (8000, 16000), (22050, 16000), (16000, 22050), (32000, 16000)]
)
@pytest.mark.parametrize("piece", [1, 997, 48000, 10**6])
def test_pieces_equal_the_whole_signal(orig, new, piece):
    generator = torch.Generator().manual_seed(orig + piece)
    signal = torch.randn(3 * orig + 123, generator=generator)
    if piece == 1:
        signal = signal[: orig // 10]  # one sample at a time: keep it short
    whole = torchaudio.functional.resample(signal, orig, new)
    streamed = resample_in_pieces(signal, orig, new, piece)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-5)


def test_equal_rates_pass_samples_through_unchanged():
    signal = torch.randn(1000)
    assert torch.equal(resample_in_pieces(signal, 16000, 16000, 300), signal)


def test_memory_holds_one_piece_plus_margins():
    resampler = StreamResampler(48000, 16000)
    for _ in range(50):
        resampler.push(torch.zeros(48000))
    assert resampler._buffer.shape[0] < 48000 + 2 * resampler.margin_blocks * resampler.orig + resampler.width


def test_shorter_than_the_kernel():
    signal = torch.randn(5)
    whole = torchaudio.functional.resample(signal, 48000, 16000)
    torch.testing.assert_close(resample_in_pieces(signal, 48000, 16000, 2), whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rates", [(0, 16000), (16000, -1)])
def test_rates_must_be_positive(rates):
    with pytest.raises(ValueError, match="freq must be a positive integer"):
        StreamResampler(*rates)
