"""``cause-pl sweep``: run a W&B sweep file locally and offline (see :mod:`cause_pl.sweeps.agent`)."""

from __future__ import annotations

import argparse
import csv
import shlex
from collections.abc import Sequence
from pathlib import Path

from cause_pl.sweeps.agent import best_run, format_table, launch, run_command, summary_rows
from cause_pl.sweeps.config import SweepConfigError, draw_runs, load_sweep


def sweep(argv: Sequence[str]) -> int:
    """Run a W&B sweep file locally and offline; write OUT/summary.csv and print the best run."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    own, extra_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="cause-pl sweep",
        description=sweep.__doc__,
        epilog="Arguments after -- are added to every run, e.g. -- --data.init_args.root=/data/shards/voxceleb2",
    )
    parser.add_argument("config", type=Path, help="W&B sweep YAML (e.g. experiments/sweeps/cause_arch_lr.yaml)")
    parser.add_argument("--count", type=int, help="number of runs (grid: default all; random: required)")
    parser.add_argument("--out", type=Path, help="runs and summary.csv (default runs/sweeps/SWEEP_NAME)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random search")
    parser.add_argument("--dry-run", action="store_true", help="print each run's command and run nothing")
    args = parser.parse_args(own)
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    try:
        config = load_sweep(args.config)
        plan = draw_runs(config, args.count, args.seed)
    except SweepConfigError as error:
        parser.error(str(error))
    out = (args.out or Path("runs") / "sweeps" / config.name).resolve()
    print(f"sweep {config.name}: {len(plan)} {config.method} runs, {config.metric} ({config.goal}), in {out}")
    if args.dry_run:
        for values in plan:
            print(shlex.join([*run_command(config, values), *extra_args]))
        return 0
    results = []
    for index, values in enumerate(plan):
        result = launch(config, values, index, out, extra_args)
        results.append(result)
        settings = " ".join(f"{name}={value}" for name, value in values.items())
        print(
            f"[{index + 1}/{len(plan)}] {result.run_id} {settings}: {result.status}, "
            f"{config.metric}={result.metric:.5g} ({result.seconds:.0f} s)",
            flush=True,
        )
    rows = summary_rows(config, results)
    with (out / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(format_table(rows))
    best = best_run(config, results)
    print(
        f"best: {best.run_id} {config.metric}={best.metric:.5g} {best.values}"
        if best
        else "best: none (no run finished)"
    )
    print(f"summary: {out / 'summary.csv'}")
    return 0 if all(result.status == "finished" for result in results) else 1
