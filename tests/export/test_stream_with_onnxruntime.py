"""``experiments/onnx/stream_with_onnxruntime.py``: onnxruntime alone streams a WAV file to ``estimate_aus``'s rows."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from cause_pl.au import AU_COLUMNS
from cause_pl.export.cause import OFFLINE_FILE, export_cause_offline, export_cause_streaming
from cause_pl.inference.estimate import estimate_aus
from tests.cli.test_main import ROOT
from tests.export.test_cause import SAMPLE_RATE, cause_model, speech_like

SCRIPT = ROOT / "experiments" / "onnx" / "stream_with_onnxruntime.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = cause_model("dcnn", seed=2)
    folder = tmp_path_factory.mktemp("onnx")
    return model, export_cause_streaming(model, folder / "cause_streaming.onnx"), folder


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_the_script_prints_the_rows_estimate_aus_gives(exported, tmp_path):
    model, path, _ = exported
    wave = speech_like(2 * SAMPLE_RATE + 517, seed=5)
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, wave.numpy(), SAMPLE_RATE, subtype="FLOAT")
    result = run_script(path, wav)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(result.stdout.splitlines()))
    assert rows[0] == ["frame", "timestamp", *AU_COLUMNS]
    expected = estimate_aus(model, torch.from_numpy(soundfile.read(wav, dtype="float32")[0])).numpy()
    table = np.array(rows[1:], dtype=np.float64)
    assert table.shape == (expected.shape[0], 2 + expected.shape[1])
    assert np.array_equal(table[:, 0], np.arange(expected.shape[0]))
    np.testing.assert_allclose(table[:, 1], np.arange(expected.shape[0]) / model.frontend_config.fps, atol=5e-4)
    assert float(np.abs(table[:, 2:] - expected).max()) < 1e-3


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (SAMPLE_RATE, 2)])
def test_a_wav_of_another_rate_or_with_two_channels_is_refused_in_one_line(exported, tmp_path, rate, channels):
    _, path, _ = exported
    wav = tmp_path / "other.wav"
    soundfile.write(wav, np.zeros((rate // 2, channels), np.float32), rate)
    result = run_script(path, wav)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"{wav}: {channels} channel(s) at {rate} Hz; the model needs mono at 16000 Hz")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_offline_file_is_refused_in_one_line(exported, tmp_path):
    model, _, folder = exported
    offline = export_cause_offline(model, folder / OFFLINE_FILE)
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, speech_like(SAMPLE_RATE // 10).numpy(), SAMPLE_RATE)
    result = run_script(offline, wav)
    assert result.returncode == 1 and "no streaming layout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_script_needs_only_numpy_soundfile_and_onnxruntime():
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__", "argparse", "json", "sys"} == {"numpy", "onnxruntime", "soundfile"}
    assert len(SCRIPT.read_text().splitlines()) < 120
