"""``cause-pl sweep``: run a W&B sweep file locally and offline (see :mod:`cause_pl.sweeps.agent`)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from cause_pl.cli.command import UsageError, require_file
from cause_pl.sweeps.agent import best_run, format_table, run_command, run_sweep, summary_rows
from cause_pl.sweeps.config import SweepConfigError, draw_runs, load_sweep


def sweep(
    sweep_file: Path,
    *,
    count: int | None = None,
    out: Path | None = None,
    seed: int = 0,
    dry_run: bool = False,
    overrides: list[str] | None = None,
) -> int:
    """Run a W&B sweep file locally and offline; write OUT/summary.csv and print the best run.

    Arguments after -- are added to every run, e.g. -- --data.init_args.root=/data/shards/voxceleb2.

    Args:
        sweep_file: W&B sweep YAML (e.g. experiments/sweeps/cause_arch_lr.yaml)
        count: number of runs (grid: default all; random: required)
        out: runs and summary.csv (default runs/sweeps/SWEEP_NAME)
        seed: seed of the random search
        dry_run: print each run's command and run nothing
        overrides: arguments added to every run; on the command line, everything after --
    """
    if count is not None and count < 1:
        raise UsageError(f"--count must be at least 1, got {count}")
    config = load_sweep(require_file(sweep_file, "sweep_file"))  # a SweepConfigError here is a bad file: exit 1
    try:
        plan = draw_runs(config, count, seed)
    except SweepConfigError as error:  # the file is fine, --count does not suit it
        raise UsageError(str(error)) from error
    extra_args = list(overrides or [])
    out = (out or Path("runs") / "sweeps" / config.name).resolve()
    if not dry_run:  # fail before the first run when OUT cannot be made
        out.mkdir(parents=True, exist_ok=True)
    print(f"sweep {config.name}: {len(plan)} {config.method} runs, {config.metric} ({config.goal}), in {out}")
    if dry_run:
        for values in plan:
            print(shlex.join([*run_command(config, values), *extra_args]))
        return 0
    results = run_sweep(config, plan, out, extra_args, report=lambda line: print(line, flush=True))
    rows = summary_rows(config, results)
    print(format_table(rows))
    best = best_run(config, results)
    print(
        f"best: {best.run_id} {config.metric}={best.metric:.5g} {best.values}"
        if best
        else "best: none (no run finished)"
    )
    print(f"summary: {out / 'summary.csv'}")
    return 0 if all(result.status == "finished" for result in results) else 1


def overrides_as_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` with the arguments after ``--`` given as ``--overrides`` (last, so they win over a config)."""
    argv = list(argv)
    if "--" not in argv:
        return argv
    split = argv.index("--")
    return [*argv[:split], f"--overrides={json.dumps(argv[split + 1 :])}"]
