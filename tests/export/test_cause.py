"""CAUSE exported to ONNX: the offline file equals ``estimate_aus``, the streaming file equals PyTorch streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cause_pl
from cause_pl.au import AU_COLUMNS, NUM_AUS
from cause_pl.export.cause import (
    LAYOUT_KEY,
    STREAM_INPUTS,
    STREAM_OUTPUTS,
    export_cause_offline,
    export_cause_streaming,
)
from cause_pl.export.onnx_file import METADATA_KEY, read_metadata
from cause_pl.export.onnx_stream import onnx_streaming_estimator, stream_layout
from cause_pl.export.runtime import onnx_session
from cause_pl.inference.estimate import estimate_aus
from cause_pl.inference.graphs import StreamingStep
from cause_pl.inference.streaming import StreamingEstimator
from cause_pl.models.cause import CAUSERegressor

SAMPLE_RATE = 16000
OFFLINE_TOLERANCE = 1e-3
STREAM_TOLERANCE = 1e-4


def cause_model(arch: str, seed: int = 0, lookahead: int | None = None) -> CAUSERegressor:
    """A freshly initialised CAUSE model in eval mode, with statistics that put its outputs inside 0..5."""
    torch.manual_seed(seed)
    model = CAUSERegressor(arch=arch, log_per_au=False, lookahead=lookahead)
    n_mels = model.frontend_config.n_mels
    generator = torch.Generator().manual_seed(seed)
    mel_mean = -6.0 + torch.randn(n_mels, generator=generator)
    mel_std = 1.5 + torch.rand(n_mels, generator=generator)
    model.set_normalization(mel_mean, mel_std, torch.rand(NUM_AUS, generator=generator) * 2)
    return model.eval()


def speech_like(samples: int, seed: int = 0) -> torch.Tensor:
    """Noise under a syllable-rate envelope (4 Hz), peak about 0.5: frames that differ from each other."""
    rng = np.random.default_rng(seed)
    time = np.arange(samples) / SAMPLE_RATE
    envelope = 0.05 + 0.3 * np.abs(np.sin(2 * np.pi * 2 * time))
    return torch.from_numpy((rng.standard_normal(samples) * envelope).astype(np.float32))


@pytest.fixture(scope="module", params=["mlp", "cnn", "dcnn", "rnn"])
def offline(request, tmp_path_factory):
    model = cause_model(request.param)
    return model, export_cause_offline(model, tmp_path_factory.mktemp("onnx") / f"{request.param}_offline.onnx")


@pytest.mark.parametrize("samples", [1, 5000, 3 * SAMPLE_RATE])
def test_offline_onnx_equals_estimate_aus(offline, samples):
    model, path = offline
    wave = speech_like(samples, seed=samples)
    (aus,) = onnx_session(path).run(["aus"], {"wave": wave.numpy()})
    expected = estimate_aus(model, wave).numpy()
    assert aus.shape == expected.shape == (model.frontend_config.num_frames(samples), NUM_AUS)
    assert float(np.abs(aus - expected).max()) < OFFLINE_TOLERANCE
    if samples > SAMPLE_RATE:
        assert ((expected > 0) & (expected < 5)).mean() > 0.2  # not a comparison of clamped constants


def test_offline_metadata_names_the_scales_and_columns(offline):
    model, path = offline
    info = read_metadata(path)[METADATA_KEY]
    assert info["kind"] == "cause_offline" and info["cause_pl_version"] == cause_pl.__version__
    assert info["arch"] == model.hparams.arch and info["sample_rate"] == SAMPLE_RATE
    assert info["au_columns"] == list(AU_COLUMNS) and info["frontend"] == model.frontend_config.to_dict()
    assert "[-1, 1]" in info["inputs"]["wave"]["scale"] and "0..5" in info["outputs"]["aus"]["scale"]
    assert LAYOUT_KEY not in read_metadata(path)
    with pytest.raises(ValueError, match="no streaming layout"):
        stream_layout(path)


@pytest.fixture(
    scope="module", params=[("mlp", None), ("cnn", None), ("dcnn", None), ("causal_cnn", 2), ("causal_dcnn", 0)]
)
def streaming(request, tmp_path_factory):
    arch, lookahead = request.param
    model = cause_model(arch, seed=1, lookahead=lookahead)
    return model, export_cause_streaming(model, tmp_path_factory.mktemp("onnx") / f"{arch}_streaming.onnx")


def random_chunks(wave: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """``wave`` cut at random points: empty pieces, single samples, pieces longer than a hop."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, wave.shape[0], size=40))
    return [*torch.tensor_split(wave, cuts.tolist())]


def test_onnx_streaming_equals_pytorch_streaming_frame_for_frame(streaming):
    model, path = streaming
    wave = speech_like(3 * SAMPLE_RATE + 123, seed=7)
    estimators = {"torch": StreamingEstimator.for_model(model), "onnx": onnx_streaming_estimator(path)}
    rows: dict[str, list[np.ndarray]] = {name: [] for name in estimators}
    for chunk in random_chunks(wave, seed=3):
        for name, estimator in estimators.items():
            rows[name].append(estimator.push(chunk))
        assert rows["onnx"][-1].shape == rows["torch"][-1].shape  # the same frames become final at the same push
    for name, estimator in estimators.items():
        rows[name].append(estimator.finish())
    streamed = {name: np.concatenate(parts) for name, parts in rows.items()}
    assert float(np.abs(streamed["onnx"] - streamed["torch"]).max()) < STREAM_TOLERANCE
    expected = estimate_aus(model, wave).numpy()
    assert streamed["onnx"].shape == expected.shape
    assert float(np.abs(streamed["onnx"] - expected).max()) < OFFLINE_TOLERANCE


def test_streaming_file_has_the_step_names_and_layout(streaming):
    model, path = streaming
    session = onnx_session(path)
    assert [value.name for value in session.get_inputs()] == list(STREAM_INPUTS)
    assert [value.name for value in session.get_outputs()] == list(STREAM_OUTPUTS)
    layout = StreamingStep(model).layout
    assert read_metadata(path)[LAYOUT_KEY] == pytest.approx(layout.to_dict())
    assert stream_layout(path) == layout
    assert read_metadata(path)[METADATA_KEY]["kind"] == "cause_streaming"
