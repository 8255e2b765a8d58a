"""CAUSE speed per architecture: training frames/s and the real-time factor of ``estimate_aus``.

    .venv/bin/python benchmarks/cause.py                     # all four nets, CPU, 1 thread
    .venv/bin/python benchmarks/cause.py --device cuda

Training: real ``pl.Trainer`` optimiser steps of ``CAUSERegressor`` on in-memory batches of
16 x 128 frames (the compute alone; benchmarks/cause_train_table1.py measures the same with the
shard pipeline feeding it, and this script reuses its ``Throughput`` meter). Inference:
``cause_pl.inference.estimate.estimate_aus`` on 10 minutes of 16 kHz audio, mel frontend included; the
real-time factor is wall time / audio time. The CNN's inference is profiled: frontend vs net vs
the rest (Python), and the torch ops that take the time.
"""

from __future__ import annotations

import argparse
import cProfile
import time
from collections.abc import Iterator
from typing import Any

import harness  # first: pins OMP threads before torch is imported
import pytorch_lightning as pl
import torch
from cause_train_table1 import Throughput  # benchmarks/ is the script's folder, so on sys.path

from cause_pl.au import NUM_AUS
from cause_pl.inference.estimate import estimate_aus
from cause_pl.models import CAUSERegressor

ARCHS = ("mlp", "rnn", "cnn", "dcnn")
BATCH, FRAMES = 16, 128
COLUMNS = ("arch", "params", "train frames/s", "train vs mlp", "infer s", "real-time factor", "x real time")


class StoppedThroughput(Throughput):
    """``Throughput`` whose clock stops at the last batch's end, not when ``rate`` is read.

    (Read after ``fit`` returns, the parent's rate would also count Lightning's teardown.)
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        harness.synchronize(pl_module.device)
        self.stopped = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.frames / (self.stopped - self.started)


class RepeatedBatch(torch.utils.data.IterableDataset):
    """One in-memory speech batch ``count`` times (the datamodule's batch contract)."""

    def __init__(self, count: int, n_mels: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.count = count
        self.batch = {
            "mel": torch.randn(BATCH, FRAMES, n_mels, generator=generator),
            "au": 5 * torch.rand(BATCH, FRAMES, NUM_AUS, generator=generator),
            "mask": torch.ones(BATCH, FRAMES, dtype=torch.bool),
            "lengths": torch.full((BATCH,), FRAMES),
            "keys": [f"utt{i}" for i in range(BATCH)],
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([self.batch] * self.count)


def build_model(arch: str) -> CAUSERegressor:
    """A fresh model with identity normalisation (as after training on standardised data)."""
    torch.manual_seed(0)
    model = CAUSERegressor(arch=arch, lr=3e-3, scheduler="none", log_per_au=False)
    n_mels = model.frontend_config.n_mels
    model.set_normalization(torch.zeros(n_mels), torch.ones(n_mels), torch.zeros(NUM_AUS))
    return model


def train_rates(model: CAUSERegressor, args: argparse.Namespace) -> list[float]:
    """Frames/s of ``args.repeats`` fits of ``args.steps`` steps after ``args.warmup`` untimed ones."""
    rates = []
    for _ in range(args.repeats):
        meter = StoppedThroughput(skip=args.warmup)
        trainer = pl.Trainer(
            max_steps=args.warmup + args.steps,
            accelerator="gpu" if args.device == "cuda" else "cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[meter],
        )
        data = RepeatedBatch(args.warmup + args.steps, model.frontend_config.n_mels)
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
        rates.append(meter.rate)
    return rates


def test_wave(seconds: float, sample_rate: int) -> torch.Tensor:
    """Noise with a slow amplitude envelope; the nets' cost does not depend on the content."""
    generator = torch.Generator().manual_seed(0)
    samples = round(seconds * sample_rate)
    envelope = 0.5 + 0.5 * torch.sin(torch.arange(samples) * (2 * torch.pi * 3 / sample_rate))
    return 0.1 * envelope * torch.randn(samples, generator=generator)


def infer_seconds(model: CAUSERegressor, wave: torch.Tensor, args: argparse.Namespace) -> list[float]:
    estimate_aus(model, wave[: 20 * model.frontend_config.sample_rate], device=args.device)  # warm-up
    return harness.timed_repeats(lambda: estimate_aus(model, wave, device=args.device), args.repeats, args.device)


def profile_inference(model: CAUSERegressor, wave: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    """Where ``estimate_aus`` spends its time: cProfile split and torch ops (self time)."""
    profiler = cProfile.Profile()
    harness.synchronize(args.device)
    started = time.perf_counter()
    profiler.runcall(lambda: (estimate_aus(model, wave, device=args.device), harness.synchronize(args.device)))
    wall = time.perf_counter() - started
    functions = harness.top_functions(profiler, None)

    def cumulative(suffix: str) -> float:
        return next((row["cumulative_s"] for row in functions if row["function"].endswith(suffix)), 0.0)

    frontend = cumulative("(log_mel_frames)")
    net = cumulative("models/cause.py:" + str(CAUSERegressor.forward.__code__.co_firstlineno) + "(forward)")
    activities = [torch.profiler.ProfilerActivity.CPU]
    if args.device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as ops_profile:
        started = time.perf_counter()
        estimate_aus(model, wave, device=args.device)
        harness.synchronize(args.device)
        ops_wall = time.perf_counter() - started
    events = ops_profile.key_averages()
    op_seconds = sum(event.self_cpu_time_total for event in events) / 1e6
    return {
        "wall_s": wall,
        "frontend_s": frontend,
        "net_s": net,
        "other_s": wall - frontend - net,
        "ops_wall_s": ops_wall,
        "torch_op_self_cpu_s": op_seconds,
        "op_calls": sum(event.count for event in events),
        "top_ops": harness.top_torch_ops(ops_profile, args.profile_top, device=args.device == "cuda"),
        "top_functions": functions[: args.profile_top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_flags(parser)
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per repeat")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps before them")
    parser.add_argument("--minutes", type=float, default=10.0, help="audio length for inference")
    parser.add_argument("--profile-arch", default="cnn", help="arch whose inference is profiled ('' for none)")
    parser.add_argument("--profile-top", type=int, default=10, help="ops/functions listed from the profile")
    args = parser.parse_args()
    harness.setup(args)
    harness.quiet_lightning()

    print(
        f"CAUSE: training batch {BATCH} x {FRAMES} frames; inference on {args.minutes:g} min of 16 kHz "
        f"audio; {args.device}, {torch.get_num_threads()} thread(s); medians of {args.repeats}"
    )
    harness.print_header(COLUMNS)
    rows, profile = [], None
    for arch in args.archs:
        model = build_model(arch)
        wave = test_wave(60 * args.minutes, model.frontend_config.sample_rate)
        rates = train_rates(model, args)
        seconds = infer_seconds(model, wave, args)
        audio = wave.shape[0] / model.frontend_config.sample_rate
        row = {
            "arch": arch,
            "params": sum(p.numel() for p in model.net.parameters()),
            "train frames/s": harness.median(rates),
            "train rates": rates,
            "infer s": harness.median(seconds),
            "infer all s": seconds,
            "real-time factor": harness.median(seconds) / audio,
            "x real time": audio / harness.median(seconds),
        }
        rows.append(row)
        row["train vs mlp"] = row["train frames/s"] / rows[0]["train frames/s"] if rows[0]["arch"] == "mlp" else ""
        harness.print_row(COLUMNS, row)
        if arch == args.profile_arch:
            profile = profile_inference(model, wave, args)
    if profile is not None:
        wall = profile["wall_s"]
        print(
            f"{args.profile_arch} inference profile (cProfile wall {wall:.3f} s): frontend (log_mel_frames) "
            f"{profile['frontend_s']:.3f} s = {profile['frontend_s'] / wall:.0%}, net forward "
            f"{profile['net_s']:.3f} s = {profile['net_s'] / wall:.0%}, rest {profile['other_s']:.3f} s = "
            f"{profile['other_s'] / wall:.0%}; under torch.profiler: wall {profile['ops_wall_s']:.3f} s, torch ops' "
            f"self CPU time {profile['torch_op_self_cpu_s']:.3f} s over {profile['op_calls']} op calls"
        )
        harness.print_top_ops("top torch ops by self time:", profile["top_ops"])
        harness.print_top_functions("top functions by cumulative time:", profile["top_functions"])
    harness.save(args.out, args, settings=vars(args), rows=rows, inference_profile=profile)


if __name__ == "__main__":
    main()
