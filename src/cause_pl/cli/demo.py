"""``cause-pl demo``: the main job on built-in synthetic data (see :mod:`cause_pl.demo.plan`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from cause_pl.cli.command import UsageError


def demo(*, out: Path = Path("demo_out"), workers: int = 2, quick: bool = False) -> int:
    """Build synthetic corpora, train CAUSE and GANimation, evaluate, and render a speech-driven animation.

    Args:
        out: folder for everything the demo makes
        workers: data-loading and corpus-building processes
        quick: tiny data and few steps: a one-minute smoke run
    """
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    out.mkdir(parents=True, exist_ok=True)  # fail before building anything when OUT cannot exist
    from cause_pl.demo.pipeline import run_demo
    from cause_pl.demo.plan import DemoPlan

    plan = DemoPlan.quick() if quick else DemoPlan()
    started = time.perf_counter()
    outputs = run_demo(out, replace(plan, workers=workers))
    print(f"\nThe demo finished in {time.perf_counter() - started:.0f} s and made, in {out}/:")
    width = max(map(len, outputs.files))
    for name, path in outputs.files.items():
        print(f"  {name:<{width}}  {path}")
    print("Scores: " + ", ".join(f"{name} {value}" for name, value in outputs.scores.items()))
    print("Stages (s): " + ", ".join(f"{name} {seconds}" for name, seconds in outputs.seconds.items()))
    print(f"Watch it: {outputs.files['animation']} (with sound). Explore: experiments/notebooks/inspect.ipynb")
    return 0
