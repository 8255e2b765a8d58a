"""W&B sweep files: read and check one (W&B's schema), and draw its runs' parameter values."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Top-level keys of W&B's sweep schema (wandb/sweeps config/schema.json); anything else is an error there.
SCHEMA_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "controller",
        "description",
        "program",
        "job",
        "image_uri",
        "entity",
        "project",
        "method",
        "command",
        "name",
        "run_cap",
        "metric",
        "metrics",
        "scheduler",
        "early_terminate",
        "parameters",
    }
)


PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


MACRO = re.compile(r"^\$\{(\w+)\}$")


ENVVAR = re.compile(r"\$\{envvar:(\w+)\}")


MACROS = ("env", "interpreter", "program", "args", "args_no_hyphens", "args_json")


DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")


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
    "q_log_uniform_values": (
        ("min", "max"),
        lambda spec, rng: _quantized(math.exp(rng.uniform(*_log_bounds(spec))), spec),
    ),
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
        raise SweepConfigError(
            f"{where}: parameter {name!r}: distribution {distribution!r} is not supported here "
            f"(supported: {', '.join(DISTRIBUTIONS)})"
        )
    missing = [key for key in DISTRIBUTIONS[distribution][0] if key not in spec]
    if missing:
        raise SweepConfigError(f"{where}: parameter {name!r} ({distribution}) lacks {', '.join(missing)}")
    if "min" in DISTRIBUTIONS[distribution][0]:
        _check_bounds(where, name, distribution, spec["min"], spec["max"])
    if distribution == "categorical" and not spec["values"]:
        raise SweepConfigError(f"{where}: parameter {name!r} has an empty values list")
    if "probabilities" in spec and len(spec["probabilities"]) != len(spec["values"]):
        raise SweepConfigError(f"{where}: parameter {name!r}: probabilities and values differ in length")
    return {**spec, "distribution": distribution}


def _check_bounds(where: str, name: str, distribution: str, low: Any, high: Any) -> None:
    """``min`` and ``max`` are numbers with ``min <= max`` (and ``min > 0`` for ``*_values`` log scales)."""
    if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
        raise SweepConfigError(f"{where}: parameter {name!r} ({distribution}): min and max must be numbers")
    if low > high:
        raise SweepConfigError(f"{where}: parameter {name!r} ({distribution}): min {low} is above max {high}")
    if distribution.endswith("log_uniform_values") and low <= 0:
        raise SweepConfigError(f"{where}: parameter {name!r} ({distribution}): min must be > 0, got {low}")


def load_sweep(path: Path) -> Sweep:
    """Read and check a W&B sweep YAML; raise :class:`SweepConfigError` for what this agent cannot run."""
    where = str(path)
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SweepConfigError(f"{where}: cannot read the sweep file: {error}") from error
    if not isinstance(config, dict):
        raise SweepConfigError(f"{where}: a sweep file is a YAML mapping")
    unknown = sorted(set(config) - SCHEMA_KEYS)
    if unknown:
        raise SweepConfigError(f"{where}: {', '.join(unknown)} are not keys of W&B's sweep schema")
    method = config.get("method")
    if method not in ("grid", "random"):
        raise SweepConfigError(
            f"{where}: method {method!r}: this agent runs grid and random sweeps "
            "(bayes needs the W&B server: use wandb sweep + wandb agent)"
        )
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
    name = str(config.get("name") or Path(path).stem)
    if "/" in name or "\\" in name or name.startswith("."):  # it names the default output folder
        raise SweepConfigError(f"{where}: name {name!r} cannot name a folder (no '/', '\\' or leading '.')")
    return Sweep(
        name=name,
        method=method,
        metric=str(metric["name"]),
        goal=goal,
        parameters=specs,
        command=command,
        program=config.get("program"),
        run_cap=run_cap,
    )


def draw_runs(sweep: Sweep, count: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Parameter values of each run: the grid in order (up to ``count``), or ``count`` random draws."""
    limits = [limit for limit in (count, sweep.run_cap) if limit is not None]
    limit = min(limits) if limits else None
    if sweep.method == "grid":
        axes = [
            [spec["value"]] if spec["distribution"] == "constant" else spec["values"]
            for spec in sweep.parameters.values()
        ]
        grid = [dict(zip(sweep.parameters, combination, strict=True)) for combination in itertools.product(*axes)]
        return grid[:limit]
    if limit is None:
        raise SweepConfigError(f"sweep {sweep.name}: a random sweep needs --count (or run_cap in the file)")
    rng = random.Random(seed)
    return [
        {name: DISTRIBUTIONS[spec["distribution"]][1](spec, rng) for name, spec in sweep.parameters.items()}
        for _ in range(limit)
    ]
