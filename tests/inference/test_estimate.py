"""Chunked AU estimation equals a full pass, stays bounded on long audio, and writes OpenFace-style CSV."""

from __future__ import annotations

import csv
import io
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from cause_pl.au import AU_COLUMNS, NUM_AUS
from cause_pl.features.mel import MelConfig
from cause_pl.inference import estimate as inference
from cause_pl.inference.estimate import RNN_CONTEXT_FRAMES, estimate_aus, estimate_file, log_mel_frames
from cause_pl.media.audio import load_audio
from cause_pl.models import CAUSERegressor
from cause_pl.openface.reader import read_openface_csv
from cause_pl.openface.writer import write_openface_style_csv
from cause_pl.synthetic.speech import synth_utterance

SAMPLE_RATE = 16000
HOP = 640


def make_model(
    arch: str, seed: int = 0, lookahead: int | None = None, frontend: MelConfig | None = None
) -> CAUSERegressor:
    """A random-init model with statistics set and outputs centred mid-scale, so clamping is rare."""
    torch.manual_seed(seed)
    model = CAUSERegressor(arch=arch, lookahead=lookahead)
    model.set_normalization(torch.randn(80) - 6.0, torch.rand(80) + 1.5, torch.rand(NUM_AUS), frontend=frontend)
    head = [module for module in model.net.modules() if isinstance(module, nn.Linear)][-1]
    with torch.no_grad():
        head.bias.add_(2.5)
    return model.eval()


def speech_wave(extra_samples: int = 0, seed: int = 0) -> torch.Tensor:
    """Synthetic speech, followed by ``extra_samples`` samples of quiet noise."""
    utterance = synth_utterance(seed, 0, min_seconds=6.0, max_seconds=8.0)
    wave = torch.from_numpy(utterance.wave)
    noise = 0.01 * torch.randn(extra_samples, generator=torch.Generator().manual_seed(seed))
    return torch.cat([wave, noise])


def full_pass(model: CAUSERegressor, wave: torch.Tensor) -> torch.Tensor:
    """The reference: the whole log-mel at once through the whole net."""
    with torch.no_grad():
        return model(model.frontend()(wave).unsqueeze(0))[0].clamp(0.0, 5.0)


def record_net_lengths(model: CAUSERegressor) -> list[int]:
    """Input frame counts of every call to the model's net."""
    lengths: list[int] = []
    model.net.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    return lengths


def test_log_mel_frames_equal_the_full_pass_slices():
    wave = speech_wave()
    frontend = make_model("mlp").frontend()
    full = frontend(wave)
    frames = full.shape[0]
    for first, stop in [(0, 1), (0, 17), (5, 6), (40, 133), (frames - 9, frames), (0, frames)]:
        torch.testing.assert_close(log_mel_frames(frontend, wave, first, stop), full[first:stop], rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "cnn", "dcnn"])
def test_chunked_estimate_equals_full_pass(arch):
    model = make_model(arch)
    wave = speech_wave(extra_samples=12345)
    reference = full_pass(model, wave)
    assert reference.shape == (1 + wave.shape[0] // HOP, NUM_AUS)
    assert reference.std() > 0.01 and ((reference > 0) & (reference < 5)).float().mean() > 0.9
    for chunk in (1, 7, 61, 1000, 10_000):
        lengths = record_net_lengths(model)
        estimate = estimate_aus(model, wave, chunk_frames=chunk)
        torch.testing.assert_close(estimate, reference, rtol=0, atol=1e-5)
        assert max(lengths) <= chunk + 2 * model.net.receptive_field


def test_chunking_without_enough_context_would_differ(monkeypatch):
    """The equality above is not luck: with no context a CNN's chunk edges change the output."""
    model = make_model("cnn")
    wave = speech_wave()
    monkeypatch.setattr(inference, "context_frames", lambda net: 0)
    difference = (estimate_aus(model, wave, chunk_frames=25) - full_pass(model, wave)).abs().max()
    assert difference > 1e-3


@pytest.mark.parametrize("arch", ["mlp", "cnn", "dcnn", "rnn"])
@pytest.mark.parametrize("samples", [1, 100, HOP - 1, HOP, HOP + 1, 3 * HOP + 5])
def test_very_short_audio(arch, samples):
    model = make_model(arch)
    wave = 0.3 * torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    reference = full_pass(model, wave)
    assert reference.shape == (1 + samples // HOP, NUM_AUS)
    for chunk in (1, 3000):
        torch.testing.assert_close(estimate_aus(model, wave, chunk_frames=chunk), reference, rtol=0, atol=1e-5)


def test_rnn_is_exact_within_one_chunk_and_close_when_chunked():
    model = make_model("rnn")
    wave = speech_wave(extra_samples=30 * SAMPLE_RATE)  # ~37 s, ~920 frames
    reference = full_pass(model, wave)
    frames = reference.shape[0]
    lengths = record_net_lengths(model)
    torch.testing.assert_close(estimate_aus(model, wave, chunk_frames=frames), reference, rtol=0, atol=1e-5)
    assert lengths == [frames]
    lengths.clear()
    chunked = estimate_aus(model, wave, chunk_frames=100)
    assert max(lengths) <= 100 + 2 * RNN_CONTEXT_FRAMES < frames
    torch.testing.assert_close(chunked, reference, rtol=0, atol=1e-3)


def test_estimate_keeps_training_mode_and_rejects_bad_input():
    model = make_model("cnn").train()
    estimate_aus(model, torch.zeros(HOP * 4))
    assert model.training
    with pytest.raises(ValueError, match="1-D"):
        estimate_aus(model, torch.zeros(2, HOP))
    with pytest.raises(ValueError, match=">= 1 sample"):
        estimate_aus(model, torch.zeros(0))
    with pytest.raises(ValueError, match="chunk_frames"):
        estimate_aus(model, torch.zeros(HOP), chunk_frames=0)


def test_estimate_file_matches_estimate_on_the_decoded_wave(tmp_path):
    model = make_model("dcnn")
    path = tmp_path / "speech.wav"
    sf.write(path, speech_wave().numpy(), SAMPLE_RATE, subtype="FLOAT")
    aus, timestamps = estimate_file(model, path, chunk_frames=50)
    expected = estimate_aus(model, load_audio(path, SAMPLE_RATE)).numpy()
    assert aus.dtype == np.float32 and aus.shape == expected.shape
    np.testing.assert_allclose(aus, expected, atol=1e-5)
    np.testing.assert_allclose(timestamps, np.arange(len(aus)) / 25.0)


def test_non_finite_model_output_is_an_error_naming_the_file(tmp_path):
    model = make_model("dcnn")
    head = [module for module in model.net.modules() if isinstance(module, nn.Linear)][-1]
    with torch.no_grad():
        head.bias[3] = float("nan")
    path = tmp_path / "speech.wav"
    sf.write(path, speech_wave().numpy(), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"the model produced non-finite AUs for .*speech\.wav"):
        estimate_file(model, path, chunk_frames=50)
    with pytest.raises(ValueError, match="non-finite AUs for this audio"):
        estimate_aus(model, speech_wave())


def parse_csv(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def test_openface_style_csv_to_stream_and_file(tmp_path):
    rng = np.random.default_rng(3)
    aus = rng.uniform(0, 5, (41, NUM_AUS)).astype(np.float32)
    stream = io.StringIO()
    write_openface_style_csv(torch.from_numpy(aus), 25, stream)
    header, table = parse_csv(stream.getvalue())
    assert header == ["frame", "face_id", "timestamp", "confidence", "success", *AU_COLUMNS]
    assert stream.getvalue().startswith("frame, face_id, timestamp, confidence, success, AU01_r, AU02_r,")
    np.testing.assert_array_equal(table[:, 0], np.arange(1, 42))
    np.testing.assert_allclose(table[:, 2], (table[:, 0] - 1) / 25, atol=5e-4)
    np.testing.assert_allclose(table[:, 5:], aus, atol=5e-4 + 1e-6)
    path = tmp_path / "aus.csv"
    write_openface_style_csv(aus, 25, path)
    assert path.read_text(encoding="utf-8") == stream.getvalue()
    with pytest.raises(ValueError, match="shape"):
        write_openface_style_csv(aus[:, :5], 25, io.StringIO())


def test_openface_style_csv_reads_back_with_the_openface_reader(tmp_path):
    aus = np.random.default_rng(4).uniform(0, 5, (30, NUM_AUS)).astype(np.float32)
    valid = np.ones(30, dtype=bool)
    valid[10:13] = False
    write_openface_style_csv(aus, 25, tmp_path / "aus.csv", valid=valid)
    track = read_openface_csv(tmp_path / "aus.csv")
    np.testing.assert_array_equal(track.valid, valid)
    np.testing.assert_allclose(track.aus, aus, atol=5e-4 + 1e-6)
    np.testing.assert_allclose(track.timestamps, np.arange(30) / 25, atol=5e-4)


def test_ten_minutes_of_audio_in_bounded_chunks(capsys):
    model = make_model("cnn")
    seconds = 600
    wave = 0.1 * torch.randn(seconds * SAMPLE_RATE, generator=torch.Generator().manual_seed(1))
    net_lengths = record_net_lengths(model)
    segment_lengths: list[int] = []
    frontend = model.frontend()
    frontend.register_forward_pre_hook(lambda module, args: segment_lengths.append(args[0].shape[-1]))
    model.frontend = lambda: frontend  # observe the frontend estimate_aus uses
    chunk = 3000
    started = time.perf_counter()
    aus = estimate_aus(model, wave, chunk_frames=chunk)
    elapsed = time.perf_counter() - started
    assert aus.shape == (seconds * 25 + 1, NUM_AUS)
    context = model.net.receptive_field
    assert len(net_lengths) == 6 and max(net_lengths) <= chunk + 2 * context
    margin_frames = 2 * 2  # log_mel_frames widens each slice by ceil(n_fft / hop) = 2 frames a side
    assert max(segment_lengths) <= (chunk + 2 * context + margin_frames) * HOP + 1
    with capsys.disabled():
        print(f"\n10-minute CNN estimate (1 thread): {elapsed:.2f} s, real-time factor {seconds / elapsed:.0f}x")
