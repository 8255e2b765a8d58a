"""StreamingEstimator: PCM in chunks of any size gives estimate_aus's frames, each as early as its latency allows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cause_pl.features.mel import MelConfig
from cause_pl.inference.estimate import estimate_aus
from cause_pl.inference.graphs import OfflineAUModel, StreamingStep
from cause_pl.inference.streaming import StreamingEstimator
from tests.inference.test_estimate import HOP, make_model, speech_wave

STREAMABLE = [("mlp", None), ("cnn", None), ("dcnn", None), ("causal_cnn", 0), ("causal_cnn", 2), ("causal_dcnn", 4)]


def stream(estimator: StreamingEstimator, wave: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, list[int]]:
    """Push ``wave`` in blocks of ``sizes`` (cycled), finish; the frames and how many each push returned."""
    rows, counts, start, index = [], [], 0, 0
    while start < wave.shape[0]:
        size = sizes[index % len(sizes)]
        rows.append(estimator.push(wave[start : start + size]))
        counts.append(rows[-1].shape[0])
        start, index = start + size, index + 1
    rows.append(estimator.finish())
    return np.concatenate(rows), counts


def random_sizes(seed: int, largest: int, count: int = 400) -> list[int]:
    return [int(size) for size in np.random.default_rng(seed).integers(1, largest + 1, size=count)]


@pytest.mark.parametrize(("arch", "lookahead"), STREAMABLE)
def test_any_chunking_gives_the_offline_frames(arch: str, lookahead: int | None) -> None:
    model = make_model(arch, lookahead=lookahead)
    wave = speech_wave()[: 5 * 16000 + 77]
    expected = estimate_aus(model, wave).numpy()
    assert ((expected > 0) & (expected < 5)).mean() > 0.2  # mostly unclamped: the comparison means something
    receptive_samples = (model.net.receptive_field + 2) * HOP
    chunkings = [random_sizes(0, 900), [160], [receptive_samples + 1234], [wave.shape[0]]]
    for sizes in chunkings:
        got, _ = stream(StreamingEstimator.for_model(model), wave.numpy(), sizes)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_one_sample_chunks_give_the_offline_frames() -> None:
    model = make_model("causal_cnn", lookahead=2)
    wave = speech_wave()[: 30 * HOP + 5]
    got, counts = stream(StreamingEstimator.for_model(model), wave.numpy(), [1])
    np.testing.assert_allclose(got, estimate_aus(model, wave).numpy(), rtol=0, atol=1e-4)
    assert max(counts) == 1


@pytest.mark.parametrize(("arch", "lookahead"), [("causal_cnn", 0), ("causal_cnn", 2), ("cnn", None)])
def test_each_frame_comes_out_with_the_sample_that_determines_it(arch: str, lookahead: int | None) -> None:
    """Fed one hop at a time, frame i comes with the push that completes sample
    i*hop + n_fft - n_fft//2 + lookahead*hop - 1, i.e. latency_ms after the frame's timestamp."""
    model = make_model(arch, lookahead=lookahead)
    estimator = StreamingEstimator.for_model(model)
    layout = estimator.layout
    wave = speech_wave()[: 40 * HOP].numpy()
    emitted_after: list[int] = []
    for push in range(40):
        emitted_after += [(push + 1) * HOP] * estimator.push(wave[push * HOP : (push + 1) * HOP]).shape[0]
    needed = [i * HOP + round(layout.latency_ms * layout.sample_rate / 1000) for i in range(len(emitted_after))]
    assert emitted_after == needed
    assert estimator.latency_ms == {0: 40.0, 2: 120.0, None: 360.0}[lookahead]


SHORT_WINDOWS = [MelConfig(win_length=640), MelConfig(win_length=400), MelConfig(n_fft=1024, win_length=1000)]


@pytest.mark.parametrize("config", SHORT_WINDOWS, ids=["40ms", "25ms", "odd-centring"])
def test_a_shorter_window_streams_exactly_with_less_latency(config: MelConfig) -> None:
    """Only the weighted part of the window is waited for: a 40 ms window and 2 look-ahead frames make 100 ms."""
    short = make_model("causal_cnn", lookahead=2, frontend=config)
    wave = speech_wave()[: 3 * 16000 + 301]
    expected = estimate_aus(short, wave).numpy()
    for sizes in (random_sizes(3, 700), [1] * 50 + [7919]):
        got, _ = stream(StreamingEstimator.for_model(short), wave.numpy(), sizes)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    layout = StreamingEstimator.for_model(short).layout
    reach = config.win_length - (config.n_fft // 2 - (config.n_fft - config.win_length) // 2)
    assert layout.latency_ms == pytest.approx(1000 * (reach + 2 * 640) / 16000)
    if config.win_length == 640:
        assert layout.latency_ms == 100.0


def test_the_rnn_cannot_stream() -> None:
    with pytest.raises(ValueError, match="unbounded context"):
        StreamingEstimator.for_model(make_model("rnn"))


def test_bad_pcm_and_reuse_are_refused() -> None:
    estimator = StreamingEstimator.for_model(make_model("causal_cnn"), source="mic")
    with pytest.raises(ValueError, match="1-D floats"):
        estimator.push(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="non-finite samples in mic"):
        estimator.push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="mic ended before its first sample"):
        estimator.finish()
    with pytest.raises(ValueError, match="finished"):
        estimator.push(np.zeros(10, np.float32))


def test_the_model_is_not_changed_or_moved() -> None:
    """Folding weight norm into the copies leaves the model's own parametrizations working."""
    model = make_model("causal_cnn").train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    mel = torch.randn(1, 30, 80)
    expected = model.eval()(mel)
    model.train()
    for _ in range(2):
        StreamingEstimator.for_model(model).push(np.zeros(5000, np.float32))
        OfflineAUModel(model)
    assert model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(model.eval()(mel), expected)


@pytest.mark.parametrize("arch", ["mlp", "rnn", "cnn", "causal_dcnn"])
def test_offline_graph_equals_estimate_aus(arch: str) -> None:
    model = make_model(arch)
    wave = speech_wave()[: 3 * 16000 + 11]
    with torch.no_grad():
        got = OfflineAUModel(model)(wave)
    torch.testing.assert_close(got, estimate_aus(model, wave), rtol=0, atol=1e-4)


def test_step_state_has_fixed_shapes() -> None:
    step = StreamingStep(make_model("causal_cnn", lookahead=2))
    samples, mel, valid = step.initial_state()
    assert (samples.shape, mel.shape, valid.shape) == ((640,), (16, 80), (16,))
    with torch.no_grad():
        aus, emitted, *state = step(torch.zeros(640), samples, mel, valid, torch.ones(1))
    assert aus.shape == (1, 17) and emitted.shape == (1,) and float(emitted) == 0.0
    assert [tensor.shape for tensor in state] == [samples.shape, mel.shape, valid.shape]
