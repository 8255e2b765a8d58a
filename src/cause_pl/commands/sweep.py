"""``cause-pl sweep``: run a W&B sweep file locally and offline, one LightningCLI run after another.

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

import argparse
import csv
import itertools
import json
import math
import os
import random
import re
import secrets
import shlex
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

# Top-level keys of W&B's sweep schema (wandb/sweeps config/schema.json); anything else is an error there.
SCHEMA_KEYS = frozenset({"apiVersion", "kind", "controller", "description", "program", "job", "image_uri", "entity",
                         "project", "method", "command", "name", "run_cap", "metric", "metrics", "scheduler",
                         "early_terminate", "parameters"})
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MACRO = re.compile(r"^\$\{(\w+)\}$")
ENVVAR = re.compile(r"\$\{envvar:(\w+)\}")
MACROS = ("env", "interpreter", "program", "args", "args_no_hyphens", "args_json")
DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")
METRIC_LOGGER = "metrics"

Spec = dict[str, Any]


class SweepConfigError(ValueError):
    """A sweep file this agent cannot run; the message names the file and the problem."""


def _bounds(spec: Spec) -> tuple[float, float]:
    return float(spec["min"]), float(spec["max"])


def _log_bounds(spec: Spec) -> tuple[float, float]:
    low, high = _bounds(spec)
    return math.log(low), math.log(high)


def _quantized(value: float, spec: Spec) -> float:
    step = spec.get("q", 1.0)
    return round(value / step) * step


# distribution -> (required keys, sampler); the meaning of each follows W&B's sweep documentation.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], Callable[[Spec, random.Random], Any]]] = {
    "constant": (("value",), lambda spec, rng: spec["value"]),
    "categorical": (("values",), lambda spec, rng: rng.choices(spec["values"], weights=spec.get("probabilities"))[0]),
    "int_uniform": (("min", "max"), lambda spec, rng: rng.randint(int(spec["min"]), int(spec["max"]))),
    "uniform": (("min", "max"), lambda spec, rng: rng.uniform(*_bounds(spec))),
    "q_uniform": (("min", "max"), lambda spec, rng: _quantized(rng.uniform(*_bounds(spec)), spec)),
    "log_uniform": (("min", "max"), lambda spec, rng: math.exp(rng.uniform(*_bounds(spec)))),  # min/max: ln values
    "log_uniform_values": (("min", "max"), lambda spec, rng: math.exp(rng.uniform(*_log_bounds(spec)))),
    "q_log_uniform_values": (("min", "max"),
                             lambda spec, rng: _quantized(math.exp(rng.uniform(*_log_bounds(spec))), spec)),
    "normal": ((), lambda spec, rng: rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0))),
    "log_normal": ((), lambda spec, rng: math.exp(rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)))),
}


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file; each parameter spec carries its resolved ``distribution``."""

    name: str
    method: str
    metric: str
    goal: str
    parameters: dict[str, Spec]
    command: tuple[str, ...]
    program: str | None
    run_cap: int | None


def _parameter(where: str, name: str, spec: Any) -> Spec:
    """``spec`` with its distribution made explicit, inferred as W&B does when the file omits it."""
    if not PARAMETER_NAME.match(name):
        raise SweepConfigError(f"{where}: parameter name {name!r} is not allowed by W&B's schema")
    if not isinstance(spec, dict):
        raise SweepConfigError(f"{where}: parameter {name!r} must be a mapping (values/value/distribution)")
    if "parameters" in spec:
        raise SweepConfigError(f"{where}: parameter {name!r}: nested parameters are not supported by this agent")
    if "distribution" in spec:
        distribution = spec["distribution"]
    elif "value" in spec:
        distribution = "constant"
    elif "values" in spec:
        distribution = "categorical"
    elif "min" in spec and "max" in spec:
        integers = all(isinstance(spec[key], int) and not isinstance(spec[key], bool) for key in ("min", "max"))
        distribution = "int_uniform" if integers else "uniform"
    else:
        raise SweepConfigError(f"{where}: parameter {name!r} needs values, value, min/max or a distribution")
    if distribution not in DISTRIBUTIONS:
        raise SweepConfigError(f"{where}: parameter {name!r}: distribution {distribution!r} is not supported here "
                               f"(supported: {', '.join(DISTRIBUTIONS)})")
    missing = [key for key in DISTRIBUTIONS[distribution][0] if key not in spec]
    if missing:
        raise SweepConfigError(f"{where}: parameter {name!r} ({distribution}) lacks {', '.join(missing)}")
    if distribution == "categorical" and not spec["values"]:
        raise SweepConfigError(f"{where}: parameter {name!r} has an empty values list")
    if "probabilities" in spec and len(spec["probabilities"]) != len(spec["values"]):
        raise SweepConfigError(f"{where}: parameter {name!r}: probabilities and values differ in length")
    return {**spec, "distribution": distribution}


def load_sweep(path: Path) -> Sweep:
    """Read and check a W&B sweep YAML; raise :class:`SweepConfigError` for what this agent cannot run."""
    where = str(path)
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SweepConfigError(f"{where}: cannot read the sweep file: {error}") from error
    if not isinstance(config, dict):
        raise SweepConfigError(f"{where}: a sweep file is a YAML mapping")
    unknown = sorted(set(config) - SCHEMA_KEYS)
    if unknown:
        raise SweepConfigError(f"{where}: {', '.join(unknown)} are not keys of W&B's sweep schema")
    method = config.get("method")
    if method not in ("grid", "random"):
        raise SweepConfigError(f"{where}: method {method!r}: this agent runs grid and random sweeps "
                               "(bayes needs the W&B server: use wandb sweep + wandb agent)")
    metric = config.get("metric")
    if not isinstance(metric, dict) or not metric.get("name"):
        raise SweepConfigError(f"{where}: needs metric: {{name: ..., goal: minimize|maximize}}")
    goal = metric.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        raise SweepConfigError(f"{where}: metric goal {goal!r} is neither minimize nor maximize")
    parameters = config.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise SweepConfigError(f"{where}: needs at least one entry under parameters")
    specs = {name: _parameter(where, name, spec) for name, spec in parameters.items()}
    if method == "grid":
        continuous = [name for name, spec in specs.items() if spec["distribution"] not in ("constant", "categorical")]
        if continuous:
            raise SweepConfigError(f"{where}: a grid sweep needs values or value for {', '.join(continuous)}")
    command = tuple(str(item) for item in config.get("command", DEFAULT_COMMAND))
    macros = [match.group(1) for item in command if (match := MACRO.match(item))]
    if unsupported := sorted(set(macros) - set(MACROS)):
        raise SweepConfigError(f"{where}: command macros {unsupported} are not supported (supported: {MACROS})")
    if "program" in macros and not config.get("program"):
        raise SweepConfigError(f"{where}: the command uses ${{program}} but the file names no program")
    run_cap = config.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        raise SweepConfigError(f"{where}: run_cap must be a positive integer, got {run_cap!r}")
    return Sweep(name=str(config.get("name") or Path(path).stem), method=method, metric=str(metric["name"]),
                 goal=goal, parameters=specs, command=command, program=config.get("program"), run_cap=run_cap)


def draw_runs(sweep: Sweep, count: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Parameter values of each run: the grid in order (up to ``count``), or ``count`` random draws."""
    limits = [limit for limit in (count, sweep.run_cap) if limit is not None]
    limit = min(limits) if limits else None
    if sweep.method == "grid":
        axes = [[spec["value"]] if spec["distribution"] == "constant" else spec["values"]
                for spec in sweep.parameters.values()]
        grid = [dict(zip(sweep.parameters, combination)) for combination in itertools.product(*axes)]
        return grid[:limit]
    if limit is None:
        raise SweepConfigError(f"sweep {sweep.name}: a random sweep needs --count (or run_cap in the file)")
    rng = random.Random(seed)
    return [{name: DISTRIBUTIONS[spec["distribution"]][1](spec, rng) for name, spec in sweep.parameters.items()}
            for _ in range(limit)]


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
    return [f"--trainer.default_root_dir={run_dir}",
            "--trainer.logger+=pytorch_lightning.loggers.CSVLogger",
            f"--trainer.logger.init_args.save_dir={run_dir}",
            f"--trainer.logger.init_args.name={METRIC_LOGGER}"]


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
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(out), "WANDB_RUN_ID": run_id,
           "WANDB_RUN_GROUP": sweep.name, "WANDB_NAME": f"{sweep.name}-{index:03d}",
           # the console scripts (cause-pl) of this installation come first
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    started = time.monotonic()
    with (run_dir / "run.log").open("w") as log:
        log.write(shlex.join(command) + "\n\n")
        log.flush()
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    return RunResult(run_id, values, returncode, last_logged(run_dir, sweep.metric), time.monotonic() - started,
                     run_dir)


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
    return [{"run": result.run_id, "status": result.status, sweep.metric: result.metric, **result.values,
             "seconds": round(result.seconds, 1), "best": "*" if result is best else "", "run_dir": str(result.run_dir)}
            for result in results]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as an aligned plain-text table."""
    columns = list(rows[0])
    cells = [columns] + [[f"{row[column]:.5g}" if isinstance(row[column], float) else str(row[column])
                          for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


def sweep(argv: Sequence[str]) -> int:
    """Run a W&B sweep file locally and offline; write OUT/summary.csv and print the best run."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    own, extra_args = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        prog="cause-pl sweep", description=sweep.__doc__,
        epilog="Arguments after -- are added to every run, e.g. -- --data.init_args.root=/data/shards/voxceleb2")
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
        print(f"[{index + 1}/{len(plan)}] {result.run_id} {settings}: {result.status}, "
              f"{config.metric}={result.metric:.5g} ({result.seconds:.0f} s)", flush=True)
    rows = summary_rows(config, results)
    with (out / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(format_table(rows))
    best = best_run(config, results)
    print(f"best: {best.run_id} {config.metric}={best.metric:.5g} {best.values}" if best else "best: none (no run finished)")
    print(f"summary: {out / 'summary.csv'}")
    return 0 if all(result.status == "finished" for result in results) else 1
