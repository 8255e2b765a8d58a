"""Training throughput of CAUSE through the real CLI: 1 process vs N DDP processes (gloo on CPU, NCCL on GPU).

Each setting is a ``cause-pl fit`` subprocess with the same per-process batch size and step count
(so N processes see N times the samples per step); a callback (:class:`StepClock`, loaded by the CLI
from this file) records when each step ends and how many samples and frames each rank trained on.
Rates are taken between the end of step ``--warmup`` and the last step, so process start-up,
rendezvous and the first steps are excluded.

    .venv/bin/python benchmarks/ddp.py --out runs/ddp.json                  # CPU, 1 vs 2 processes
    .venv/bin/python benchmarks/ddp.py --device cuda --devices 8 --num-workers 4 --shards /data/shards/voxceleb2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from cause_pl.cpus import usable_cpus

ROOT = Path(__file__).resolve().parents[1]


class StepClock(pl.Callback):
    """Per rank, for every training step: end time, process CPU time, samples, valid (unpadded) frames.

    Written to ``OUT.rankR.json`` at the end; CPU time / wall time shows how much of a core a rank got.
    """

    def __init__(self, out: str) -> None:
        self.out, self.steps = out, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # the step's kernels have finished
        self.steps.append(
            (time.perf_counter(), time.process_time(), len(batch["lengths"]), int(batch["lengths"].sum()))
        )

    def on_train_end(self, trainer, pl_module) -> None:
        Path(f"{self.out}.rank{trainer.global_rank}.json").write_text(json.dumps(self.steps))


def fit_command(args: argparse.Namespace, shards: Path, processes: int, clock: Path, run_dir: Path) -> list[str]:
    """``cause-pl fit`` of the CAUSE config with ``processes`` devices, no validation, logging or checkpoints."""
    return [
        sys.executable,
        "-m",
        "cause_pl.cli.main",
        "fit",
        *(f"--config={config}" for config in args.config),
        *([f"--model.init_args.arch={args.arch}"] if args.arch else []),
        "--model.init_args.log_per_au=false",
        f"--data.init_args.root={shards}",
        f"--data.init_args.batch_size={args.batch_size}",
        f"--data.init_args.num_workers={args.num_workers}",
        f"--data.init_args.train_samples_per_epoch={args.batch_size * processes * args.steps}",
        f"--trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"--trainer.devices={processes}",
        f"--trainer.strategy={'ddp' if processes > 1 else 'auto'}",
        "--trainer.num_nodes=1",
        f"--trainer.max_steps={args.steps}",
        "--trainer.max_epochs=-1",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={run_dir}",
        "--trainer.callbacks=benchmarks.ddp.StepClock",
        f"--trainer.callbacks.out={clock}",
    ]


def measure(args: argparse.Namespace, shards: Path, processes: int, work: Path) -> dict[str, Any]:
    """Run one setting; samples/s and frames/s summed over ranks between step ``warmup`` and the last step,
    and the mean CPU share of a rank (CPU seconds per wall second, all its threads) over that span."""
    clock, run_dir = work / f"clock{processes}", work / f"run{processes}"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    result = subprocess.run(
        fit_command(args, shards, processes, clock, run_dir), cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if result.returncode:
        raise SystemExit(f"fit with {processes} process(es) failed:\n{result.stderr[-4000:]}")
    ranks = [json.loads(Path(f"{clock}.rank{rank}.json").read_text()) for rank in range(processes)]
    timed = [steps[args.warmup :] for steps in ranks]  # steps after the end of step `warmup`
    start = [steps[args.warmup - 1] for steps in ranks]  # the end of step `warmup`, per rank
    seconds = timed[0][-1][0] - start[0][0]
    samples = sum(step[2] for steps in timed for step in steps)
    frames = sum(step[3] for steps in timed for step in steps)
    cpu_share = sum(
        (steps[-1][1] - first[1]) / (steps[-1][0] - first[0]) for steps, first in zip(timed, start, strict=True)
    )
    return {
        "processes": processes,
        "steps_timed": len(timed[0]),
        "seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 1),
        "frames_per_s": round(frames / seconds, 1),
        "ms_per_step": round(1000 * seconds / len(timed[0]), 2),
        "cpu_per_rank": round(cpu_share / processes, 2),
        "wall_s_with_startup": round(wall, 1),
    }


def synthetic_shards(directory: Path) -> Path:
    """Small synthetic speech_au shards (8 train shards: enough for 8 ranks x 1 worker)."""
    from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus

    shards = directory / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=4))
    return shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, help="speech_au shards (default: small synthetic ones in a temp dir)")
    parser.add_argument(
        "--config",
        type=Path,
        nargs="+",
        default=[ROOT / "experiments" / "cause" / name for name in ("voxceleb2.yaml", "synthetic.yaml")],
        help="CAUSE configs in order, later ones win (default: the VoxCeleb2 base with the synthetic overlay)",
    )
    parser.add_argument(
        "--arch", choices=["mlp", "rnn", "cnn", "dcnn"], help="overrides the configs' architecture (theirs: the CNN)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the timing")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per process")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--devices", type=int, default=2, help="processes of the DDP row")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    if not 1 <= args.warmup < args.steps:
        parser.error(f"need 1 <= --warmup < --steps, got {args.warmup} and {args.steps}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as temp:
        work = Path(temp)
        shards = args.shards or synthetic_shards(work)
        rows = [measure(args, shards, processes, work) for processes in (1, args.devices)]
    speedup = rows[1]["samples_per_s"] / rows[0]["samples_per_s"]
    report = {
        "arch": args.arch or "as configured",
        "device": args.device,
        "batch_size_per_process": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "num_workers": args.num_workers,
        "rows": rows,
        "speedup": round(speedup, 3),
        "scaling_efficiency": round(speedup / args.devices, 3),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(
        "| processes | samples/s | frames/s | ms/step | CPU cores per rank | wall s (with start-up) |\n"
        "|---|---|---|---|---|---|"
    )
    for row in rows:
        print(
            f"| {row['processes']} | {row['samples_per_s']:.1f} | {row['frames_per_s']:.0f} | "
            f"{row['ms_per_step']:.1f} | {row['cpu_per_rank']:.2f} | {row['wall_s_with_startup']:.0f} |"
        )
    print(
        f"speed-up {args.devices} vs 1 process: {speedup:.2f}x (efficiency {speedup / args.devices:.0%}); "
        f"{report['usable_cpus']} usable CPUs, load average before {load_before[0]:.2f}, "
        f"after {report['load_average_after'][0]:.2f}"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
