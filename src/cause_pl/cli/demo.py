"""``cause-pl demo``: the main job on built-in synthetic data (see :mod:`cause_pl.demo.plan`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path


def demo(argv: Sequence[str]) -> int:
    """Build synthetic corpora, train CAUSE and GANimation, evaluate, and render a speech-driven animation."""
    parser = argparse.ArgumentParser(prog="cause-pl demo", description=demo.__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for everything the demo makes")
    parser.add_argument("--workers", type=int, default=2, help="data-loading and corpus-building processes")
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps: a one-minute smoke run")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    from cause_pl.demo.pipeline import run_demo
    from cause_pl.demo.plan import DemoPlan

    plan = DemoPlan.quick() if args.quick else DemoPlan()
    started = time.perf_counter()
    outputs = run_demo(args.out, replace(plan, workers=args.workers))
    print(f"\nThe demo finished in {time.perf_counter() - started:.0f} s and made, in {args.out}/:")
    width = max(map(len, outputs.files))
    for name, path in outputs.files.items():
        print(f"  {name:<{width}}  {path}")
    print("Scores: " + ", ".join(f"{name} {value}" for name, value in outputs.scores.items()))
    print("Stages (s): " + ", ".join(f"{name} {seconds}" for name, seconds in outputs.seconds.items()))
    print(f"Watch it: {outputs.files['animation']} (with sound). Explore: experiments/notebooks/inspect.ipynb")
    return 0
