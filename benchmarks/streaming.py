"""Live AU estimation: compute per 40 ms hop (PyTorch and onnxruntime) and the latency a listener sees.

    .venv/bin/python benchmarks/streaming.py            # 8 nets, 500 timed hops, 20 s real-time replay each
    .venv/bin/python benchmarks/streaming.py --quick    # smoke run: 2 nets, 50 hops, 1 s replay

On one CPU thread (``torch.set_num_threads(1)``; onnxruntime with one intra-op thread), per net:
- compute: ``StreamingEstimator.push`` of one hop (640 samples = 40 ms) timed over ``--hops`` pushes
  after a warm-up, median and 95th percentile in ms, and the real-time factor (mean / 40 ms); with
  PyTorch (``StreamingStep``) and with the same step exported to ONNX and run by onnxruntime
  (``cause_pl.export``);
- latency: the algorithmic latency (the mel window after the frame's centre plus the look-ahead) and the
  emission latency of ``--seconds`` of synthetic speech replayed in real time in 10 ms chunks, measured
  as ``cause-pl stream`` does (emit time minus the time the frame's timestamp was captured;
  ``cause_pl.inference.live``), with PyTorch.
The models are untrained (random init): timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness  # first: pins OMP threads before torch is imported
import numpy as np
import torch

from cause_pl.au import NUM_AUS
from cause_pl.export.cause import export_cause_streaming
from cause_pl.export.onnx_stream import onnx_streaming_estimator
from cause_pl.features.mel import MelConfig
from cause_pl.inference.live import LiveRun, latency_summary, timed_chunks
from cause_pl.inference.streaming import StreamingEstimator
from cause_pl.models import CAUSERegressor
from cause_pl.synthetic.speech import synth_utterance

DEFAULT_WINDOW = MelConfig().win_length
SHORT_WINDOW = 640
"""A 40 ms analysis window: half the default's wait for the audio after a frame."""
NETS: tuple[tuple[str, int | None, int], ...] = (
    ("causal_cnn", 0, DEFAULT_WINDOW),
    ("causal_cnn", 1, DEFAULT_WINDOW),
    ("causal_cnn", 2, DEFAULT_WINDOW),
    ("causal_cnn", 2, SHORT_WINDOW),
    ("causal_cnn", 4, DEFAULT_WINDOW),
    ("causal_dcnn", 2, DEFAULT_WINDOW),
    ("cnn", None, DEFAULT_WINDOW),
    ("mlp", None, DEFAULT_WINDOW),
)
QUICK_NETS = (("causal_cnn", 2, SHORT_WINDOW), ("mlp", None, DEFAULT_WINDOW))
COLUMNS = (
    "arch",
    "lookahead",
    "window ms",
    "torch ms/hop",
    "torch p95 ms",
    "torch RTF",
    "onnx ms/hop",
    "onnx p95 ms",
    "onnx RTF",
    "algorithmic ms",
    "emission median ms",
    "emission p95 ms",
)
CHUNK_MS = 10
WARMUP_HOPS = 50


def build_model(arch: str, lookahead: int | None, win_length: int) -> CAUSERegressor:
    """A random-init model with identity normalisation and a mel window of ``win_length`` samples."""
    torch.manual_seed(0)
    model = CAUSERegressor(arch=arch, lookahead=lookahead)
    n_mels = model.frontend_config.n_mels
    frontend = MelConfig(win_length=win_length)
    model.set_normalization(torch.zeros(n_mels), torch.ones(n_mels), torch.zeros(NUM_AUS), frontend=frontend)
    return model.eval()


def speech(seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of synthetic speech: utterances of one speaker, back to back."""
    parts, total, index = [], 0, 0
    while total < seconds * sample_rate:
        parts.append(synth_utterance(0, index, sample_rate=sample_rate).wave)
        total, index = total + parts[-1].shape[0], index + 1
    return np.concatenate(parts)[: int(seconds * sample_rate)].astype(np.float32)


def hop_times(make: Callable[[], StreamingEstimator], wave: np.ndarray, hops: int) -> dict[str, float]:
    """Median and p95 ms of one hop's ``push`` over ``hops`` pushes after a warm-up, and the real-time factor."""
    estimator = make()
    hop = estimator.layout.hop
    needed = (WARMUP_HOPS + hops) * hop
    signal = np.resize(wave, needed)  # repeats the speech if it is shorter
    times = []
    for index in range(WARMUP_HOPS + hops):
        started = time.perf_counter()
        estimator.push(signal[index * hop : (index + 1) * hop])
        times.append(time.perf_counter() - started)
    timed = np.array(times[WARMUP_HOPS:]) * 1000
    hop_ms = 1000 * hop / estimator.layout.sample_rate
    return {"ms/hop": float(np.median(timed)), "p95 ms": float(np.percentile(timed, 95)), "RTF": timed.mean() / hop_ms}


def replay_latency(estimator: StreamingEstimator, wave: np.ndarray) -> tuple[float, float]:
    """Median and p95 emission latency (ms) of ``wave`` fed in 10 ms chunks in real time."""
    rate = estimator.layout.sample_rate
    chunk = rate * CHUNK_MS // 1000
    chunks = (wave[start : start + chunk] for start in range(0, wave.shape[0], chunk))
    latencies = [
        1000 * (time.perf_counter() - frame.arrival)
        for frame in LiveRun(estimator).frames(timed_chunks(chunks, rate, realtime=True))
    ]
    return latency_summary(latencies)


def onnx_maker(model: CAUSERegressor, path: Path) -> Callable[[], StreamingEstimator]:
    """A maker of onnxruntime-driven estimators of ``model``, exported to ``path``."""
    export_cause_streaming(model, path)
    return lambda: onnx_streaming_estimator(path, intra_op_threads=1)


def measure(
    arch: str, lookahead: int | None, win_length: int, args: argparse.Namespace, folder: Path
) -> dict[str, object]:
    model = build_model(arch, lookahead, win_length)
    config = model.frontend_config
    wave = speech(args.seconds, config.sample_rate)
    window_ms = 1000 * win_length / config.sample_rate
    row: dict[str, object] = {"arch": arch, "lookahead": model.net.lookahead, "window ms": window_ms}
    torch_times = hop_times(lambda: StreamingEstimator.for_model(model), wave, args.hops)
    row |= {f"torch {key}": value for key, value in torch_times.items()}
    maker = onnx_maker(model, folder / f"{arch}_{model.net.lookahead}_{win_length}.onnx")
    row |= {f"onnx {key}": value for key, value in hop_times(maker, wave, args.hops).items()}
    estimator = StreamingEstimator.for_model(model)
    StreamingEstimator(estimator.step, estimator.layout).push(np.zeros(4 * estimator.layout.hop, np.float32))
    median, p95 = replay_latency(estimator, wave)
    return row | {"algorithmic ms": estimator.latency_ms, "emission median ms": median, "emission p95 ms": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_common_flags(parser, device=False)
    parser.add_argument("--hops", type=int, default=500, help="timed pushes of one hop per net")
    parser.add_argument("--seconds", type=float, default=20.0, help="speech replayed in real time per net")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 nets, 50 hops, 1 s of speech")
    args = parser.parse_args()
    harness.setup(args)
    if args.quick:
        args.hops, args.seconds = 50, 1.0
    rows = []
    harness.print_header(COLUMNS)
    with tempfile.TemporaryDirectory() as folder:
        for arch, lookahead, win_length in QUICK_NETS if args.quick else NETS:
            rows.append(measure(arch, lookahead, win_length, args, Path(folder)))
            harness.print_row(COLUMNS, rows[-1])
    print("(untrained random-init nets; one CPU thread; latency: 10 ms chunks in real time, PyTorch)")
    harness.save(args.out, args, rows=rows)


if __name__ == "__main__":
    main()
