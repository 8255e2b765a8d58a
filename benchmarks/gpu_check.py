"""What ``benchmarks/gpu_check.sh`` needs from Python: inputs, a timed CAUSE fit, guarded steps, one JSON.

    python benchmarks/gpu_check.py prepare --out DIR            # fresh 128-px checkpoints, speech, face
    python benchmarks/gpu_check.py cause-fit --shards S --out J # CAUSE CNN fit on shards: steps/s
    python benchmarks/gpu_check.py step --work W --name N --kind K --timeout T -- COMMAND ...
    python benchmarks/gpu_check.py assemble --work W --out gpu_check.json --mode real|dry

``step`` runs COMMAND (no shell) in its own process group with its output in ``W/logs/N.log``, kills it
after ``--timeout`` seconds or at the run's deadline (``GPU_CHECK_DEADLINE``, Unix time), and always
exits 0: the outcome goes to ``W/steps/*.json`` (status ``ok``, ``failed``, ``timeout``, ``skipped`` or
``dry``, seconds, return code, the end of the output, metrics parsed by ``--kind``). ``assemble``
joins the steps, the machine and the issue's targets into the one results file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
KINDS = ("plain", "pytest", "animate", "json")
TARGETS = {"ganimation_train_images_per_s_128px": 350.0, "animate_frames_per_s_128px": 1000.0}
"""The issue's targets on one H200: GANimation 128-px training and end-to-end animation at 128 px."""
TAIL_CHARS = 3000


# ---- step -------------------------------------------------------------------------------------------


def parse_pytest(text: str) -> dict[str, Any]:
    """Counts from pytest's last summary line (run) or its collection line (``--collect-only``)."""
    metrics: dict[str, Any] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed|skipped|error)", line)), "")
    for count, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)", summary):
        metrics[word.rstrip("s") if word.startswith("error") else word] = int(count)
    collected = re.search(r"(\d+)(?:/\d+)? tests? collected(?: \((\d+) deselected\))?", text)
    if collected:
        metrics["collected"] = int(collected.group(1))
        if collected.group(2):
            metrics["deselected"] = int(collected.group(2))
    return metrics


def parse_animate(text: str) -> dict[str, Any]:
    """The summary line of ``cause-pl animate``: frames, audio seconds, frames/s and the stage split."""
    found = re.search(r"(\d+) frames, ([\d.]+) s of audio; ([\d.]+) frames/s \(([^)]*)\)", text)
    if not found:
        return {}
    stages = {name: float(seconds) for name, seconds in re.findall(r"(\w+) ([\d.]+) s", found.group(4))}
    frames = int(found.group(1))
    return {
        "frames": frames,
        "audio_seconds": float(found.group(2)),
        "frames_per_s": float(found.group(3)),
        "stage_seconds": stages,
        "stage_frames_per_s": {name: frames / seconds for name, seconds in stages.items() if seconds > 0},
    }


def step(args: argparse.Namespace) -> int:
    """Run one guarded step and record it; always 0 (a failure is a result, not an abort)."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    logs, steps = args.work / "logs", args.work / "steps"
    logs.mkdir(parents=True, exist_ok=True)
    steps.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"name": args.name, "kind": args.kind, "command": command, "dry": args.dry}
    deadline = float(os.environ.get("GPU_CHECK_DEADLINE", "inf"))
    timeout = min(args.timeout, deadline - time.time())
    log = logs / f"{args.name}.log"
    record["log"] = str(log)
    print(f"[gpu_check] {args.name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    if timeout < 5:
        record.update(status="skipped", reason="the run's time budget (GPU_CHECK_BUDGET_S) is spent", seconds=0.0)
    else:
        record.update(run(command, log, timeout))
    record["seconds"] = round(time.perf_counter() - started, 2)
    text = log.read_text(errors="replace") if log.exists() else ""
    record["tail"] = text[-TAIL_CHARS:]
    if record["status"] == "ok" and args.dry:
        record["status"] = "dry"
    record["metrics"] = metrics(args, text)
    order = len(list(steps.glob("*.json")))
    (steps / f"{order:02d}-{args.name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"[gpu_check] {args.name}: {record['status']} in {record['seconds']:.1f} s", flush=True)
    if record["status"] not in ("ok", "dry"):
        print(record["tail"][-1500:], flush=True)
    return 0


def run(command: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """``command`` with stdout and stderr into ``log``; its process group killed after ``timeout`` s."""
    with log.open("w") as out:
        try:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
            )
        except OSError as error:
            return {"status": "failed", "returncode": None, "error": f"could not start: {error}"}
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return {"status": "timeout", "returncode": None, "timeout_s": round(timeout, 1)}
    return {"status": "ok" if returncode == 0 else "failed", "returncode": returncode}


def metrics(args: argparse.Namespace, text: str) -> dict[str, Any]:
    if args.kind == "pytest":
        return parse_pytest(text)
    if args.kind == "animate":
        return parse_animate(text)
    if args.kind == "json" and args.json is not None and args.json.is_file():
        try:
            return json.loads(args.json.read_text())
        except json.JSONDecodeError as error:
            return {"error": f"{args.json}: {error}"}
    return {}


# ---- prepare ----------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> int:
    """Fresh checkpoints (CAUSE CNN, GANimation at ``--image-size``), ``--seconds`` of speech, a face."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    import torch
    from animate import speech_file  # benchmarks/animate.py

    from cause_pl.au import NUM_AUS
    from cause_pl.models import CAUSERegressor, GANimation
    from cause_pl.synthetic.face_identity import corpus_identity
    from cause_pl.synthetic.faces import draw_face

    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cause = CAUSERegressor(arch="cnn", log_per_au=False)
    n_mels = cause.frontend_config.n_mels
    cause.set_normalization(torch.zeros(n_mels), torch.ones(n_mels), torch.zeros(NUM_AUS))
    ganimation = GANimation(image_size=args.image_size)
    for module, name in ((cause, "cause.ckpt"), (ganimation, "ganimation.ckpt")):
        checkpoint: dict[str, Any] = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
        module.on_save_checkpoint(checkpoint)
        torch.save(checkpoint, args.out / name)
    speech = speech_file(args.out, args.seconds, cause.frontend_config.sample_rate)
    draw_face(np.zeros(NUM_AUS), corpus_identity(0), args.image_size).save(args.out / "face.png")
    print(f"wrote {args.out}/cause.ckpt, ganimation.ckpt ({args.image_size} px), {speech.name}, face.png")
    return 0


# ---- cause-fit --------------------------------------------------------------------------------------


def cause_fit(args: argparse.Namespace) -> int:
    """A CAUSE CNN fit on speech shards; optimiser steps/s and frames/s after ``--warmup`` steps."""
    import pytorch_lightning as pl
    import torch

    from cause_pl.data import SpeechAUDataModule
    from cause_pl.models import CAUSERegressor

    class Clock(pl.Callback):
        def __init__(self) -> None:
            self.started, self.stopped, self.frames = 0.0, 0.0, 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step == args.warmup:
                self._sync()
                self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step > args.warmup:
                self.frames += int(batch["mel"].shape[0] * batch["mel"].shape[1])
                self._sync()
                self.stopped = time.perf_counter()

        def _sync(self) -> None:
            if torch.cuda.is_available() and args.device == "cuda":
                torch.cuda.synchronize()

    if args.dry_run:
        print(f"cause-fit: would fit {args.steps} steps on {args.shards} ({args.precision}, {args.device})")
        return 0
    pl.seed_everything(0, verbose=False)
    batch = 16
    data = SpeechAUDataModule(
        str(args.shards),
        batch_size=batch,
        crop_frames=128,
        num_workers=args.workers,
        train_samples_per_epoch=batch * (args.steps + args.warmup),
        shuffle_buffer=200,
    )
    model = CAUSERegressor(arch="cnn", lr=3e-3, warmup_steps=20, log_per_au=False)
    clock = Clock()
    trainer = pl.Trainer(
        max_steps=args.steps + args.warmup,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[clock],
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = max(clock.stopped - clock.started, 1e-9)
    timed = trainer.global_step - args.warmup
    result = {
        "arch": "cnn",
        "precision": args.precision,
        "device": args.device,
        "batch": f"{batch} x 128 frames",
        "steps": trainer.global_step,
        "timed_steps": timed,
        "steps_per_s": timed / seconds,
        "frames_per_s": clock.frames / seconds,
        "fit_wall_s": time.perf_counter() - started,
    }
    print(json.dumps(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


# ---- assemble ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Python, torch, CUDA and the GPU, as this interpreter sees them (never fails)."""
    info: dict[str, Any] = {"python": platform.python_version(), "host": platform.node()}
    try:
        import torch

        info.update(torch=torch.__version__, cuda_available=torch.cuda.is_available(), cuda=torch.version.cuda)
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except Exception as error:  # the results file must be written whatever is broken
        info["torch_error"] = repr(error)
    for package in ("pytorch_lightning", "torchaudio", "torchmetrics"):
        try:
            info[package] = __import__(package).__version__
        except Exception as error:
            info[f"{package}_error"] = repr(error)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=10
        ).stdout.strip()
    return info


def headline(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers the issue's targets are about, where the steps measured them."""
    best_train, best_setting = None, None
    animate_fps = None
    for record in steps:
        found = record.get("metrics") or {}
        if record["name"].startswith("ganimation_bench"):
            for row in found.get("rows", []):
                rate = row.get("train img/s")
                if (
                    isinstance(rate, (int, float))
                    and row.get("correct", True)
                    and (best_train is None or rate > best_train)
                ):
                    best_train, best_setting = rate, f"{row.get('setting')} ({record['name']})"
        if record["name"] == "animate_command" and "frames_per_s" in found:
            animate_fps = found["frames_per_s"]
    result: dict[str, Any] = {
        "ganimation_train_images_per_s_128px": best_train,
        "ganimation_best_setting": best_setting,
        "animate_frames_per_s_128px": animate_fps,
    }
    result["meets_targets"] = {
        key: (None if result[key] is None else result[key] >= target) for key, target in TARGETS.items()
    }
    return result


def assemble(args: argparse.Namespace) -> int:
    steps = [json.loads(path.read_text()) for path in sorted((args.work / "steps").glob("*.json"))]
    counts: dict[str, int] = {}
    for record in steps:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    results = {
        "mode": args.mode,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "total_seconds": round(args.elapsed, 1) if args.elapsed is not None else None,
        "machine": machine(),
        "targets": TARGETS,
        "headline": headline(steps),
        "counts": counts,
        "steps": steps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"[gpu_check] {len(steps)} steps: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0


# ---- command line -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="what", required=True)

    run_step = commands.add_parser("step", help="run one guarded, timed step and record it")
    run_step.add_argument("--work", type=Path, required=True)
    run_step.add_argument("--name", required=True)
    run_step.add_argument("--kind", choices=KINDS, default="plain")
    run_step.add_argument("--timeout", type=float, default=300)
    run_step.add_argument("--json", type=Path, help="kind json: the file the command writes its results to")
    run_step.add_argument("--dry", action="store_true", help="a dry-mode check: record success as 'dry'")
    run_step.add_argument("command", nargs=argparse.REMAINDER)

    make = commands.add_parser("prepare", help="fresh checkpoints, speech and a face for the animate step")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--seconds", type=float, default=60.0)
    make.add_argument("--image-size", type=int, default=128)

    fit = commands.add_parser("cause-fit", help="CAUSE CNN fit on speech shards: steps/s")
    fit.add_argument("--shards", type=Path, required=True)
    fit.add_argument("--steps", type=int, default=300)
    fit.add_argument("--warmup", type=int, default=20)
    fit.add_argument("--precision", default="bf16-mixed")
    fit.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    fit.add_argument("--workers", type=int, default=4)
    fit.add_argument("--out", type=Path)
    fit.add_argument("--dry-run", action="store_true", help="parse the arguments and import, fit nothing")

    join = commands.add_parser("assemble", help="join the recorded steps into one JSON")
    join.add_argument("--work", type=Path, required=True)
    join.add_argument("--out", type=Path, required=True)
    join.add_argument("--mode", choices=("real", "dry"), required=True)
    join.add_argument("--elapsed", type=float)

    args = parser.parse_args(argv)
    if args.what == "step":
        if not args.command or args.command == ["--"]:
            parser.error("step: give the command after --")
        return step(args)
    return {"prepare": prepare, "cause-fit": cause_fit, "assemble": assemble}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
