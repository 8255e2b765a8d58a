"""estimate_stream: audio arriving in blocks of any size gives estimate_aus's result in bounded memory."""

from __future__ import annotations

import pytest
import torch

from cause_pl.inference import estimate as inference
from cause_pl.inference.estimate import context_frames, estimate_aus, estimate_stream
from tests.inference.test_estimate import HOP, make_model, speech_wave


def split_randomly(wave: torch.Tensor, seed: int, largest: int) -> list[torch.Tensor]:
    """``wave`` cut at random places into blocks of 0..largest samples (empty ones included)."""
    generator = torch.Generator().manual_seed(seed)
    blocks, start = [], 0
    while start < wave.shape[0]:
        size = int(torch.randint(0, largest + 1, (1,), generator=generator))
        blocks.append(wave[start : start + size])
        start += size
    return blocks


@pytest.mark.parametrize("arch", ["mlp", "cnn", "dcnn", "rnn"])
@pytest.mark.parametrize("chunk_frames", [40, 100_000])
def test_blocks_give_the_in_memory_result(arch, chunk_frames):
    model = make_model(arch)
    wave = speech_wave(extra_samples=3 * 16000)
    expected = estimate_aus(model, wave, chunk_frames=chunk_frames)
    for seed, largest in ((0, 5000), (1, 40_000), (2, 1)):
        blocks = split_randomly(wave if largest > 1 else wave[: 60 * HOP], seed, largest)
        reference = expected if largest > 1 else estimate_aus(model, wave[: 60 * HOP], chunk_frames=chunk_frames)
        streamed = estimate_stream(model, iter(blocks), chunk_frames=chunk_frames)
        assert streamed.shape == reference.shape
        torch.testing.assert_close(streamed, reference, rtol=0, atol=1e-5)


def test_only_what_the_next_chunks_need_is_kept(monkeypatch):
    model = make_model("dcnn")
    chunk_frames, block = 50, 8000
    read_sizes: list[int] = []
    slice_frames = inference.log_mel_frames

    def recording(frontend, wave, first, stop, offset=0):
        read_sizes.append(wave.shape[0])
        return slice_frames(frontend, wave, first, stop, offset)

    monkeypatch.setattr(inference, "log_mel_frames", recording)
    wave = speech_wave(extra_samples=60 * 16000)  # over a minute: 30+ chunks
    estimate_stream(model, iter(wave.split(block)), chunk_frames=chunk_frames)
    margin = inference.frame_margin(model.frontend())
    bound = (chunk_frames + 2 * context_frames(model.net) + 2 * margin + 1) * HOP + block
    assert len(read_sizes) > 30 and max(read_sizes) <= bound < wave.shape[0] / 5


def test_no_samples_at_all_is_an_error():
    with pytest.raises(ValueError, match=">= 1 sample"):
        estimate_stream(make_model("cnn"), iter([torch.zeros(0), torch.zeros(0)]))
