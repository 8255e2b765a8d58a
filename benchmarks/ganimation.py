"""GANimation speed: training images/s (real WGAN-GP steps) and generator inference images/s per setting.

    .venv/bin/python benchmarks/ganimation.py                    # paper model, 128 px, batch 4, CPU
    .venv/bin/python benchmarks/ganimation.py --small            # synthetic config's model at 64 px
    .venv/bin/python benchmarks/ganimation.py --demo             # the demo's model at 64 px, batch 16
    .venv/bin/python benchmarks/ganimation.py --device cuda      # batch 25

Settings are ``fp32`` or ``+``-joined options: ``channels_last``, ``bf16`` (training
``precision="bf16-mixed"``, inference ``torch.autocast``), ``tiled`` (the generator computed as the
paper writes it, the condition tiled over H x W and two head convs: what the package did before its
exact rewrite) and ``compile`` (``nn.Module.compile`` of
the generator; the critic stays eager, since its gradient penalty needs double backward, which
compiled graphs do not support). Each setting keeps one model (seed-0 weights, like every other).
Inference: ``model.generate`` images/s (outputs copied to the CPU), and the max abs difference of
the edited images from fp32's on the same input. Training: a real ``pl.Trainer`` over one
in-memory batch; a cycle is ``critic_steps`` batches (five critic updates, one generator update);
every round trains each setting once for ``--warmup-cycles`` untimed cycles plus one timed cycle.
Repeats go round-robin over the settings, so that load from other users hits all of them alike.
``compile s`` is the extra time of the first (compiling) warm-up, training / inference; it is far
lower when inductor's on-disk cache already holds the kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import harness  # first: pins OMP threads before torch is imported
import pytorch_lightning as pl
import torch

sys.path.insert(0, str(harness.REPO_ROOT))

from tests.builders.ganimation_reference import tiled_forward

from cause_pl.au import NUM_AUS
from cause_pl.demo.plan import DemoPlan
from cause_pl.demo.training import demo_ganimation
from cause_pl.models.ganimation import GANimation

OPTIONS = ("channels_last", "bf16", "tiled", "compile")
SMALL_MODEL = {"g_base_channels": 32, "g_res_blocks": 3, "d_base_channels": 32, "d_layers": 5, "d_max_channels": 512}
"""The model of the experiments/ganimation/synthetic.yaml overlay (trained there at 64 px)."""
TOLERANCE = {False: 1e-3, True: 5e-2}
"""Max abs difference from fp32 (images in [-1, 1]) that still counts as correct, without / with bf16."""
COLUMNS = (
    "setting",
    "train img/s",
    "train vs fp32",
    "critic batch ms",
    "generator batch ms",
    "infer img/s",
    "infer vs fp32",
    "max abs diff",
    "correct",
    "compile s",
    "note",
)


@dataclass(frozen=True)
class Setting:
    """A speed setting: which of ``OPTIONS`` it turns on."""

    name: str
    channels_last: bool = False
    bf16: bool = False
    tiled: bool = False
    compile: bool = False

    @classmethod
    def parse(cls, name: str) -> Setting:
        options = set() if name == "fp32" else set(name.split("+"))
        unknown = options - set(OPTIONS)
        if unknown:
            raise SystemExit(
                f"--settings: unknown option(s) {sorted(unknown)} in {name!r}; use fp32 or +-joined {OPTIONS}"
            )
        return cls(name, **{option: option in options for option in OPTIONS})

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.bf16]


class CompileTimeout(BaseException):
    """Compilation (the warm-up) outlasted ``--compile-timeout``. A BaseException, so that the
    ``except Exception`` fallbacks inside torch.compile do not swallow it."""


@contextlib.contextmanager
def alarm(seconds: float, active: bool) -> Iterator[None]:
    """Raise CompileTimeout in the main thread after ``seconds`` (CycleClock cancels it after warm-up)."""
    if not active:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CompileTimeout(f"warm-up with compilation took over {seconds:.0f} s (--compile-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def build_model(args: argparse.Namespace, setting: Setting) -> GANimation:
    """The model with seed-0 weights (identical for every setting), prepared for ``setting``."""
    torch.manual_seed(0)
    if args.demo:  # without the critic-only warm-up batches, which would be timed instead of training steps
        model = demo_ganimation(DemoPlan(gan_warmup_epochs=0))
    else:
        model = GANimation(image_size=args.image_size, **(SMALL_MODEL if args.small else {}))
    if setting.tiled:
        model.generator.forward = partial(tiled_forward, model.generator)  # type: ignore[method-assign]
    model.to(args.device)
    if setting.channels_last:
        model.to(memory_format=torch.channels_last)
    if setting.compile:
        model.generator.compile()
    return model


def make_batch(args: argparse.Namespace, setting: Setting) -> dict[str, Any]:
    """A CPU batch of the training contract: images in [-1, 1], AUs on the /5 scale (seeded)."""
    generator = torch.Generator().manual_seed(1)
    size, batch = args.image_size, args.batch_size
    image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    if setting.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return {
        "image": image,
        "au": torch.rand(batch, NUM_AUS, generator=generator),
        "target_au": torch.rand(batch, NUM_AUS, generator=generator),
        "keys": [f"img{i}" for i in range(batch)],
    }


@dataclass
class Candidate:
    """One setting under test: its model (shared by both phases: inference first, on the initial
    weights, then training), its batch, its table row, and why it dropped out, if it did."""

    setting: Setting
    model: GANimation
    batch: dict[str, Any]
    row: dict[str, Any]
    failure: str | None = None

    def fail(self, stage: str, error: BaseException) -> None:
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        self.failure = self.row["note"] = f"{stage} skipped: {type(error).__name__}: {reason}"
        if self.setting.compile:
            torch._dynamo.reset()


def active(candidates: list[Candidate]) -> list[Candidate]:
    return [candidate for candidate in candidates if candidate.failure is None]


def autocast(args: argparse.Namespace, setting: Setting) -> contextlib.AbstractContextManager:
    if not setting.bf16:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16)


def measure_inference(args: argparse.Namespace, candidates: list[Candidate]) -> None:
    """Generator images/s per setting, repeats taken round-robin over the settings (so that load
    from other users of the machine hits all alike); then each output's max abs difference from fp32."""
    runs: dict[str, Any] = {}
    for candidate in candidates:
        setting, model = candidate.setting, candidate.model
        inputs = (candidate.batch["image"].to(args.device), candidate.batch["target_au"].to(args.device))

        def edit(model=model, setting=setting, inputs=inputs) -> torch.Tensor:
            with autocast(args, setting):
                return model.generate(*inputs).image.float().cpu()

        try:
            with alarm(args.compile_timeout, setting.compile):
                first = harness.timed_repeats(edit, 1, args.device)[0]
            for _ in range(args.warmup_iters - 1):
                edit()
        except (Exception, CompileTimeout) as error:  # a broken setting is reported; the rest go on
            candidate.fail("infer", error)
            continue
        runs[setting.name] = edit
        candidate.row["infer first s"] = first
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for candidate in active(candidates):
            edit = runs[candidate.setting.name]
            seconds[candidate.setting.name] += harness.timed_repeats(
                lambda edit=edit: [edit() for _ in range(args.infer_iters)], 1, args.device
            )
    reference = runs["fp32"]() if "fp32" in runs else None
    for candidate in active(candidates):
        row, setting = candidate.row, candidate.setting
        per_call = harness.median(seconds[setting.name]) / args.infer_iters
        row.update({"infer img/s": args.batch_size / per_call, "infer s": seconds[setting.name]})
        if setting.compile:
            row["infer compile s"] = row["infer first s"] - per_call
        if reference is not None:
            difference = float((runs[setting.name]() - reference).abs().max())
            row.update({"max abs diff": difference, "correct": difference <= setting.tolerance})


class RepeatedBatch(torch.utils.data.IterableDataset):
    """The same in-memory batch ``count`` times: measures the model, not data loading."""

    def __init__(self, batch: dict[str, Any], count: int) -> None:
        self.batch, self.count = batch, count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([self.batch] * self.count)


class CycleClock(pl.Callback):
    """Times every batch; ends the compile time box after warm-up; profiles the last cycle."""

    def __init__(self, cycle: int, warmup_batches: int, profile_from: int | None, device: str) -> None:
        self.cycle, self.warmup_batches, self.profile_from, self.device = cycle, warmup_batches, profile_from, device
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.profile: torch.profiler.profile | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.profile_from:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.device == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.profile = torch.profiler.profile(activities=activities)
            self.profile.start()
        harness.synchronize(self.device)
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        harness.synchronize(self.device)
        self.ends.append(time.perf_counter())
        if batch_idx + 1 == self.warmup_batches:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if self.profile is not None and batch_idx + 1 == self.profile_from + self.cycle:
            self.profile.stop()

    def cycle_seconds(self, first: int, count: int) -> list[float]:
        """Wall-clock seconds of ``count`` whole cycles starting at cycle ``first``."""
        return [
            self.ends[(first + i + 1) * self.cycle - 1] - self.starts[(first + i) * self.cycle] for i in range(count)
        ]

    def batch_seconds(self, first: int, stop: int) -> list[float]:
        """Seconds inside each of batches ``first .. stop-1`` (training step and optimiser steps)."""
        return [end - start for start, end in zip(self.starts[first:stop], self.ends[first:stop], strict=True)]


def fit(args: argparse.Namespace, candidate: Candidate, cycles: int, profile: bool, time_box: bool) -> CycleClock:
    """Train ``candidate`` for ``cycles`` cycles in a fresh Trainer; the first ``warmup_cycles`` are warm-up."""
    model = candidate.model
    cycle = model.hparams.critic_steps
    warmup = args.warmup_cycles * cycle
    clock = CycleClock(cycle, warmup, (cycles - 1) * cycle if profile else None, args.device)
    loader = torch.utils.data.DataLoader(RepeatedBatch(candidate.batch, cycles * cycle), batch_size=None)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if candidate.setting.bf16 else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    with alarm(args.compile_timeout, time_box):
        trainer.fit(model, train_dataloaders=loader)
    return clock


def measure_training(
    args: argparse.Namespace, candidates: list[Candidate], profile_name: str
) -> torch.profiler.profile | None:
    """Training images/s per setting: ``repeats`` rounds, each one fit per setting (round-robin) of
    ``warmup_cycles`` untimed cycles (a fresh Trainer's first steps allocate optimiser state) and
    one timed cycle; the profiled setting gets one more cycle in the last round. Returns the profile."""
    cycles: dict[str, list[float]] = {candidate.setting.name: [] for candidate in candidates}
    warmups: dict[str, list[float]] = {name: [] for name in cycles}
    batches: dict[str, list[float]] = {name: [] for name in cycles}
    profile = None
    for round_index in range(args.repeats):
        for candidate in active(candidates):
            name = candidate.setting.name
            profiled = round_index == args.repeats - 1 and name == profile_name
            try:
                clock = fit(
                    args,
                    candidate,
                    args.warmup_cycles + 1 + profiled,
                    profiled,
                    time_box=round_index == 0 and candidate.setting.compile,
                )
            except (Exception, CompileTimeout) as error:  # a broken setting is reported; the rest go on
                candidate.fail("train", error)
                continue
            cycles[name] += clock.cycle_seconds(args.warmup_cycles, 1)
            warmups[name].append(sum(clock.cycle_seconds(0, args.warmup_cycles)))
            timed = args.warmup_cycles * clock.cycle
            batches[name] += clock.batch_seconds(timed, timed + clock.cycle)
            profile = clock.profile or profile
    for candidate in active(candidates):
        name, row = candidate.setting.name, candidate.row
        cycle = candidate.model.hparams.critic_steps
        critic_only = [seconds for index, seconds in enumerate(batches[name]) if (index + 1) % cycle]
        row.update(
            {
                "train img/s": args.batch_size * cycle / harness.median(cycles[name]),
                "train cycle s": cycles[name],
                "generator batch ms": 1e3 * harness.median(batches[name][cycle - 1 :: cycle]),
            }
        )
        if critic_only:  # none when the generator steps on every batch (critic_steps 1, the demo's)
            row["critic batch ms"] = 1e3 * harness.median(critic_only)
        if candidate.setting.compile:
            later = warmups[name][1:] or [args.warmup_cycles * harness.median(cycles[name])]
            row["train compile s"] = warmups[name][0] - harness.median(later)
    return profile


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each rate relative to the first row's (fp32)."""
    baseline = rows[0]
    for row in rows:
        for rate, ratio in (("train img/s", "train vs fp32"), ("infer img/s", "infer vs fp32")):
            if rate in row and rate in baseline:
                row[ratio] = row[rate] / baseline[rate]


def fastest(rows: list[dict[str, Any]], rate: str) -> dict[str, Any] | None:
    """The row with the highest ``rate`` among those within tolerance of fp32."""
    usable = [row for row in rows if rate in row and row.get("correct", True)]
    return max(usable, key=lambda row: row[rate], default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_flags(parser)
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["fp32", "channels_last", "bf16", "compile", "compile+bf16"],
        help="fp32 first (the baseline), then fp32 or +-joined " + ", ".join(OPTIONS),
    )
    parser.add_argument(
        "--small", action="store_true", help="the synthetic config's small model (default image size 64)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="the model `cause-pl demo` trains (64 px, batch 16 unless given)"
    )
    parser.add_argument("--image-size", type=int, help="default 128 (64 with --small); --demo: always the demo's 64")
    parser.add_argument("--batch-size", type=int, help="default 4 on CPU (16 with --demo), 25 (the paper's) on CUDA")
    parser.add_argument(
        "--warmup-cycles", type=int, default=1, help="untimed training cycles at the start of every fit"
    )
    parser.add_argument("--warmup-iters", type=int, default=2, help="untimed generator calls first")
    parser.add_argument("--infer-iters", type=int, default=3, help="generator calls per timed repeat")
    parser.add_argument("--compile-timeout", type=float, default=900, help="seconds allowed for a compiled warm-up")
    parser.add_argument("--profile", default="fp32", help="setting whose training cycle is profiled ('' for none)")
    parser.add_argument("--profile-top", type=int, default=12, help="ops listed from the profile")
    parser.add_argument("--no-training", action="store_true", help="measure inference only")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and settings, measure nothing")
    args = parser.parse_args()
    if args.dry_run:
        names = [Setting.parse(name).name for name in args.settings]
        if names[:1] != ["fp32"]:
            raise SystemExit("--settings: the first setting must be fp32, the baseline of ratios and checks")
        print(f"would measure {', '.join(names)} on {args.device}")
        return
    harness.setup(args)
    harness.quiet_lightning()
    if args.demo:
        args.image_size = DemoPlan().gan_image_size
        args.batch_size = args.batch_size or DemoPlan().gan_batch_size
    args.image_size = args.image_size or (64 if args.small else 128)
    args.batch_size = args.batch_size or (25 if args.device == "cuda" else 4)
    settings = [Setting.parse(name) for name in args.settings]
    if settings[0].name != "fp32":
        raise SystemExit("--settings: the first setting must be fp32, the baseline of ratios and checks")

    model_name = "demo" if args.demo else "small (synthetic config)" if args.small else "paper"
    print(
        f"GANimation {model_name} model, {args.image_size} px, batch {args.batch_size}, {args.device}, "
        f"{torch.get_num_threads()} thread(s); medians of {args.repeats}"
    )
    candidates = []
    for setting in settings:
        candidates.append(
            Candidate(setting, build_model(args, setting), make_batch(args, setting), {"setting": setting.name})
        )
    print("measuring inference (round-robin over settings) ...", flush=True)
    measure_inference(args, candidates)
    profile = None
    if not args.no_training:
        print("measuring training (one fit per setting and round) ...", flush=True)
        profile = measure_training(args, candidates, args.profile)
    rows = [candidate.row for candidate in candidates]
    add_ratios(rows)
    for row in rows:
        if "train compile s" in row or "infer compile s" in row:
            row["compile s"] = " / ".join(
                f"{row[key]:.1f}" if key in row else "-" for key in ("train compile s", "infer compile s")
            )
    harness.print_header(COLUMNS)
    for row in rows:
        harness.print_row(COLUMNS, row)
    for rate, label in (("train img/s", "training"), ("infer img/s", "inference")):
        best = fastest(rows, rate)
        if best is not None:
            print(
                f"fastest correct {label} setting: {best['setting']} at {best[rate]:.3g} img/s, "
                f"{best[rate] / rows[0][rate]:.2f}x fp32 (max abs diff {best.get('max abs diff', 0):.2g})"
            )
    ops = []
    if profile is not None:
        ops = harness.top_torch_ops(profile, args.profile_top, device=args.device == "cuda")
        cycle = candidates[0].model.hparams.critic_steps
        harness.print_top_ops(
            f"{args.profile} profile of one training cycle ({cycle} batches: {cycle} critic + "
            "1 generator update), top ops by self time:",
            ops,
        )
    harness.save(args.out, args, settings=vars(args), rows=rows, profile_top_ops=ops)


if __name__ == "__main__":
    main()
