"""The offline sweep agent behind ``cause-pl sweep``: a W&B sweep file's runs, one LightningCLI run after another.

``wandb sweep`` and ``wandb agent`` need the W&B server: the sweep controller lives there, and
wandb 0.31's "local controller" needs the separate ``sweeps`` package and still registers the sweep
and its runs with the server. This agent reads the same YAML (W&B's sweep schema: ``method`` grid or
random, ``parameters``, ``metric``, ``command`` with ``${args}``), draws the runs itself and launches
each run's command with ``WANDB_MODE=offline``, ``WANDB_RUN_ID`` and ``WANDB_RUN_GROUP`` = the sweep
name. It reads the sweep metric back from a CSV logger it adds to every run (its last logged value,
which is what a W&B summary holds): an offline W&B run keeps its history in a binary file that only
``wandb sync`` reads.

Under ``--out`` (default ``runs/sweeps/SWEEP_NAME``, also the runs' ``WANDB_DIR``): one folder per
run id (``run.log``, ``metrics/version_0/metrics.csv`` and what the run's config writes there) and
``summary.csv``. ``wandb sync OUT/*/wandb/offline-run-*`` uploads the runs later.
"""

from __future__ import annotations

import csv
import json
import math
import os
import secrets
import shlex
import string
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cause_pl.sweeps.config import ENVVAR, MACRO, Sweep

METRIC_LOGGER = "metrics"


def run_command(sweep: Sweep, values: dict[str, Any]) -> list[str]:
    """The sweep's command for one run, macros expanded as ``wandb agent`` does.

    ``${env}`` (``/usr/bin/env`` for the W&B agent) expands to nothing: the environment is passed
    directly; ``${interpreter}`` is this Python.
    """
    expansions = {
        "env": [],
        "interpreter": [sys.executable],
        "program": [sweep.program] if sweep.program else [],
        "args": [f"--{name}={value}" for name, value in values.items()],
        "args_no_hyphens": [f"{name}={value}" for name, value in values.items()],
        "args_json": [json.dumps(values)],
    }
    command: list[str] = []
    for item in sweep.command:
        item = ENVVAR.sub(lambda match: os.environ.get(match.group(1), match.group(1)), item)
        macro = MACRO.match(item)
        command += expansions[macro.group(1)] if macro else [item]
    return command


def metric_logger_args(run_dir: Path) -> list[str]:
    """Overrides that keep a run's files in ``run_dir`` and add the CSV logger the metric is read from."""
    return [
        f"--trainer.default_root_dir={run_dir}",
        "--trainer.logger+=pytorch_lightning.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={run_dir}",
        f"--trainer.logger.init_args.name={METRIC_LOGGER}",
    ]


def last_logged(run_dir: Path, metric: str) -> float:
    """The last value of ``metric`` in the run's CSV log (NaN when the run never logged it)."""
    logs = sorted((run_dir / METRIC_LOGGER).glob("version_*/metrics.csv"))
    if not logs:
        return math.nan
    with logs[-1].open(newline="") as file:
        values = [row[metric] for row in csv.DictReader(file) if row.get(metric)]
    return float(values[-1]) if values else math.nan


@dataclass(frozen=True)
class RunResult:
    """One finished (or failed) run of the sweep."""

    run_id: str
    values: dict[str, Any]
    returncode: int
    metric: float
    seconds: float
    run_dir: Path

    @property
    def status(self) -> str:
        if self.returncode:
            return f"failed (exit {self.returncode})"
        return "finished" if math.isfinite(self.metric) else "no metric"


def launch(sweep: Sweep, values: dict[str, Any], index: int, out: Path, extra_args: Sequence[str]) -> RunResult:
    """Run one sweep run to completion (offline W&B), its output in ``OUT/RUN_ID/run.log``."""
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    run_dir = out / run_id
    run_dir.mkdir(parents=True)
    command = [*run_command(sweep, values), *extra_args, *metric_logger_args(run_dir)]
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(out),
        "WANDB_RUN_ID": run_id,
        "WANDB_RUN_GROUP": sweep.name,
        "WANDB_NAME": f"{sweep.name}-{index:03d}",
        # the console scripts (cause-pl) of this installation come first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    started = time.monotonic()
    with (run_dir / "run.log").open("w") as log:
        log.write(shlex.join(command) + "\n\n")
        log.flush()
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    return RunResult(
        run_id, values, returncode, last_logged(run_dir, sweep.metric), time.monotonic() - started, run_dir
    )


def best_run(sweep: Sweep, results: Sequence[RunResult]) -> RunResult | None:
    """The run with the best finite metric for the sweep's goal."""
    finished = [result for result in results if math.isfinite(result.metric)]
    if not finished:
        return None
    pick = min if sweep.goal == "minimize" else max
    return pick(finished, key=lambda result: result.metric)


def summary_rows(sweep: Sweep, results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run: id, status, the metric, the parameter values, seconds, best marker, folder."""
    best = best_run(sweep, results)
    return [
        {
            "run": result.run_id,
            "status": result.status,
            sweep.metric: result.metric,
            **result.values,
            "seconds": round(result.seconds, 1),
            "best": "*" if result is best else "",
            "run_dir": str(result.run_dir),
        }
        for result in results
    ]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as an aligned plain-text table."""
    columns = list(rows[0])
    cells = [columns] + [
        [f"{row[column]:.5g}" if isinstance(row[column], float) else str(row[column]) for column in columns]
        for row in rows
    ]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def run_sweep(
    sweep: Sweep,
    plan: Sequence[dict[str, Any]],
    out: Path,
    extra_args: Sequence[str],
    report: Callable[[str], None] = print,
) -> list[RunResult]:
    """Every run of ``plan`` in order, each reported as it ends; the table of all of them in ``OUT/summary.csv``."""
    results = []
    for index, values in enumerate(plan):
        result = launch(sweep, values, index, out, extra_args)
        results.append(result)
        settings = " ".join(f"{name}={value}" for name, value in values.items())
        report(
            f"[{index + 1}/{len(plan)}] {result.run_id} {settings}: {result.status}, "
            f"{sweep.metric}={result.metric:.5g} ({result.seconds:.0f} s)"
        )
    rows = summary_rows(sweep, results)
    with (out / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return results
