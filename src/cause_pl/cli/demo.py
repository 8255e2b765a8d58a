"""``cause-pl demo``: the main job on built-in synthetic data (see :mod:`cause_pl.demo.plan`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from cause_pl.cli.command import UsageError


def demo(
    *,
    out: Path = Path("demo_out"),
    workers: int = 2,
    quick: bool = False,
    precision: Literal["auto", "32-true", "bf16-mixed"] = "auto",
) -> int:
    """Build synthetic corpora, train CAUSE and GANimation, evaluate, and render a speech-driven animation.

    Args:
        out: folder for everything the demo makes
        workers: data-loading processes of CAUSE's training and evaluation (the two corpora are built
            side by side, one process each)
        quick: tiny data and few steps: a one-minute smoke run
        precision: GANimation's training precision; auto: bf16-mixed where the CPU computes bf16
            natively (AVX-512 BF16 or AMX), else 32-true
    """
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    out.mkdir(parents=True, exist_ok=True)  # fail before building anything when OUT cannot exist
    from cause_pl.demo.pipeline import run_demo
    from cause_pl.demo.plan import DemoPlan

    plan = replace(DemoPlan.quick() if quick else DemoPlan(), workers=workers)
    if precision != "auto":
        plan = replace(plan, gan_precision=precision)
    started = time.perf_counter()
    outputs = run_demo(out, plan)
    print(f"\nThe demo finished in {time.perf_counter() - started:.0f} s and made, in {out}/:")
    width = max(map(len, outputs.files))
    for name, path in outputs.files.items():
        print(f"  {name:<{width}}  {path}")
    print("Scores: " + ", ".join(f"{name} {value}" for name, value in outputs.scores.items()))
    print("Stages (s): " + ", ".join(f"{name} {seconds}" for name, seconds in outputs.seconds.items()))
    print(f"Watch it: {outputs.files['animation']} (with sound). Explore: experiments/notebooks/inspect.ipynb")
    return 0
