"""``cause-pl stream``: rows through real pipes while the input still arrives, equal to estimate_aus, timed."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from cause_pl.au import AU_COLUMNS
from cause_pl.cli.command import EXIT_DATA, EXIT_USAGE
from cause_pl.cli.main import main
from cause_pl.cli.stream import audio_as_flag
from cause_pl.inference.estimate import estimate_aus
from cause_pl.models.cause import CAUSERegressor
from tests.inference.test_estimate import HOP, SAMPLE_RATE, make_model, speech_wave

ROOT = Path(__file__).resolve().parents[2]
CAUSE_PL = str(ROOT / ".venv" / "bin" / "cause-pl")
FPS = SAMPLE_RATE // HOP
PIECE = 320
"""Samples per write to the command's stdin (20 ms), written every 20 ms."""


def save_checkpoint(model: CAUSERegressor, path: Path) -> Path:
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def causal(tmp_path_factory) -> tuple[CAUSERegressor, Path]:
    model = make_model("causal_cnn", lookahead=2)
    return model, save_checkpoint(model, tmp_path_factory.mktemp("stream") / "causal_cnn.ckpt")


def s16(wave: torch.Tensor) -> np.ndarray:
    return np.clip(np.round(wave.numpy() * 32768), -32768, 32767).astype("<i2")


def read_lines(stream, into: list[tuple[float, str]]) -> threading.Thread:
    """A thread appending (arrival time, line) for each line of ``stream``."""

    def run() -> None:
        for line in stream:
            into.append((time.perf_counter(), line.decode().rstrip("\n")))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def table(lines: list[str]) -> tuple[list[str], np.ndarray]:
    return lines[0].split(","), np.array([[float(cell) for cell in line.split(",")] for line in lines[1:]])


def test_stdin_rows_come_while_the_pcm_arrives(causal):
    model, ckpt = causal
    pcm = s16(speech_wave()[: 2 * SAMPLE_RATE + 123])
    process = subprocess.Popen(
        [CAUSE_PL, "stream", "--stdin", "--ckpt", str(ckpt)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=False,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    lines: list[tuple[float, str]] = []
    reader = read_lines(iter(process.stdout.readline, b""), lines)
    deadline = time.perf_counter() + 60  # wait for the header: the model is loaded and stdin is read from now on
    while not lines and process.poll() is None and time.perf_counter() < deadline:
        time.sleep(0.01)
    for start in range(0, pcm.shape[0], PIECE):  # real-time pace, never catching up
        process.stdin.write(pcm[start : start + PIECE].tobytes())
        process.stdin.flush()
        time.sleep(PIECE / SAMPLE_RATE)
    closed = time.perf_counter()
    process.stdin.close()
    reader.join(30)
    code, err = process.wait(30), process.stderr.read().decode()
    assert code == 0, err
    summary = err.strip().splitlines()
    header, rows = table([line for _, line in lines])
    assert header[:4] == ["frame", "timestamp", "latency_ms", "AU01_r"] and len(header) == 3 + 17
    assert sum(arrived < closed for arrived, _ in lines[1:]) > 10  # rows came before stdin was closed
    wave = torch.from_numpy(pcm.astype(np.float32) / 32768)
    assert rows.shape[0] == 1 + pcm.shape[0] // HOP
    np.testing.assert_array_equal(rows[:, 0], np.arange(rows.shape[0]))
    np.testing.assert_allclose(rows[:, 1], rows[:, 0] / FPS, atol=6e-4)
    np.testing.assert_allclose(rows[:, 3:], estimate_aus(model, wave).numpy(), atol=2e-3)
    algorithmic = 120.0  # the mel window's future half (40 ms) and 2 frames of look-ahead
    during = rows[: (pcm.shape[0] - 1920) // HOP]  # frames the stream determined before its end
    assert during[:, 2].min() >= algorithmic - 1000 * PIECE / SAMPLE_RATE - 5
    assert len(summary) == 1 and f"{rows.shape[0]} frames" in summary[0] and "algorithmic latency 120 ms" in summary[0]


def test_a_wav_file_as_json_lines(causal, tmp_path, capsys):
    model, ckpt = causal
    wave = speech_wave()[: SAMPLE_RATE + 5 * HOP + 7]
    sf.write(tmp_path / "speech.wav", wave.numpy(), SAMPLE_RATE, subtype="FLOAT")
    assert main(["stream", str(tmp_path / "speech.wav"), "--ckpt", str(ckpt), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    expected = estimate_aus(model, wave).numpy()
    assert [row["frame"] for row in rows] == list(range(expected.shape[0]))
    assert [row["timestamp"] for row in rows] == [round(i / FPS, 3) for i in range(expected.shape[0])]
    got = np.array([[row[column] for column in AU_COLUMNS] for row in rows])
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert all(row["latency_ms"] >= 0 for row in rows) and "speech.wav: 31 frames" in err


def test_realtime_paces_a_file(causal, tmp_path):
    _, ckpt = causal
    sf.write(tmp_path / "one_second.wav", speech_wave()[:SAMPLE_RATE].numpy(), SAMPLE_RATE)
    process = subprocess.Popen(
        [CAUSE_PL, "stream", str(tmp_path / "one_second.wav"), "--ckpt", str(ckpt), "--realtime"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    header = process.stdout.readline()
    started = time.perf_counter()
    rows = process.stdout.readlines()
    elapsed = time.perf_counter() - started
    assert process.wait(30) == 0 and header.startswith("frame,")
    assert len(rows) == 26 and elapsed >= 0.9
    latencies = np.array([float(row.split(",")[2]) for row in rows[:-3]])
    assert latencies.min() >= 120 - 2  # the algorithmic latency, plus waiting for chunk ends and compute
    assert np.median(latencies) < 120 + 10 + 20


def test_broken_pipe_ends_quietly(causal, tmp_path):
    _, ckpt = causal
    sf.write(tmp_path / "speech.wav", speech_wave().numpy(), SAMPLE_RATE)
    command = f"{CAUSE_PL} stream {tmp_path / 'speech.wav'} --ckpt {ckpt} | head -n 3"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 3 and done.stderr == ""


def test_a_net_that_cannot_stream_and_a_wrong_rate_are_one_line(tmp_path, capsys):
    rnn = save_checkpoint(make_model("rnn"), tmp_path / "rnn.ckpt")
    sf.write(tmp_path / "a.wav", speech_wave()[:4000].numpy(), SAMPLE_RATE)
    with pytest.raises(SystemExit) as exit_:
        main(["stream", str(tmp_path / "a.wav"), "--ckpt", str(rnn)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == EXIT_DATA and len(err) == 1 and "rnn.ckpt" in err[0] and "cannot stream" in err[0]
    causal_ckpt = save_checkpoint(make_model("causal_cnn", lookahead=0), tmp_path / "causal.ckpt")
    with pytest.raises(SystemExit) as exit_:
        main(["stream", "--stdin", "--rate", "44100", "--ckpt", str(causal_ckpt)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == EXIT_USAGE and len(err) == 1 and "-ar 16000" in err[0]


def test_audio_positional_is_spelled_as_a_flag():
    assert audio_as_flag(["a.wav", "--ckpt", "c"]) == ["--audio", "a.wav", "--ckpt", "c"]
    assert audio_as_flag(["--ckpt", "c", "-", "--realtime"]) == ["--ckpt", "c", "--audio", "-", "--realtime"]
    assert audio_as_flag(["--stdin", "true", "--ckpt", "c"]) == ["--stdin", "true", "--ckpt", "c"]
    assert audio_as_flag(["--stdin", "--chunk_ms", "5"]) == ["--stdin", "--chunk_ms", "5"]


def test_help_and_a_run_from_a_printed_config(causal, tmp_path, capsys):
    _, ckpt = causal
    with pytest.raises(SystemExit):
        main(["stream", "--help"])
    assert "milliseconds of audio per chunk" in " ".join(capsys.readouterr().out.split())
    sf.write(tmp_path / "a.wav", speech_wave()[:8000].numpy(), SAMPLE_RATE)
    args = ["stream", str(tmp_path / "a.wav"), "--ckpt", str(ckpt), "--format", "jsonl", "--chunk_ms", "25"]
    with pytest.raises(SystemExit):
        main([*args, "--print_config"])
    (tmp_path / "stream.yaml").write_text(capsys.readouterr().out)
    assert main(["stream", "--config", str(tmp_path / "stream.yaml")]) == 0
    from_config = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(args) == 0
    from_flags = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(from_config) == 13 and [row["AU01_r"] for row in from_config] == [row["AU01_r"] for row in from_flags]
