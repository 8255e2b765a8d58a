"""What the benchmark scripts share: thread pinning, repeated timing, table rows, JSON output, profiles.

Import this module before torch: it sets ``OMP_NUM_THREADS=1`` (unless the environment already
sets it), because on the shared 2-core machine more threads than cores made small nets ~10x slower.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def add_common_flags(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """``--threads``, ``--repeats``, ``--out`` and (where a GPU makes sense) ``--device``."""
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (torch.set_num_threads)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; rows report the median")
    parser.add_argument("--out", type=Path, help="also save the rows and the machine as JSON here")
    if device:
        parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")


def setup(args: argparse.Namespace) -> None:
    """Apply ``--threads`` and check ``--device``; call once after parsing."""
    if args.threads < 1 or args.repeats < 1:
        raise SystemExit(f"--threads and --repeats must be >= 1, got {args.threads} and {args.repeats}")
    torch.set_num_threads(args.threads)
    if getattr(args, "device", "cpu") == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")


def synchronize(device: str | torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed_repeats(run: Callable[[], Any], repeats: int, device: str | torch.device = "cpu") -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``run`` (GPU work included)."""
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return seconds


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What the numbers were measured on."""
    device = getattr(args, "device", "cpu")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_header(columns: Sequence[str]) -> None:
    """The header of a markdown table; rows follow with ``print_row`` as they are measured."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)


def print_row(columns: Sequence[str], row: dict[str, Any]) -> None:
    """One markdown table row of ``row``'s ``columns``; floats get 4 significant digits."""
    print("| " + " | ".join(_cell(column, row.get(column, "")) for column in columns) + " |", flush=True)


def quiet_lightning() -> None:
    """Silence Lightning's per-fit banners and the few-workers hint (the data is in memory)."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    for message in (
        ".*does not have many workers.*",
        ".*no `val_dataloader`.*",
        ".*LeafSpec.*is deprecated.*",
        ".*Profiler clears events.*",
    ):
        warnings.filterwarnings("ignore", message)


def _cell(column: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and " vs " in column:
        return f"{value:.2f}x"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def save(path: Path | None, args: argparse.Namespace, **sections: Any) -> None:
    """Write ``{"machine": ..., **sections}`` as JSON to ``path`` (no-op without ``--out``)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(args), **sections}, indent=2, default=str) + "\n")
    print(f"saved {path}")


def top_torch_ops(profile: torch.profiler.profile, count: int, device: bool = False) -> list[dict[str, Any]]:
    """The ``count`` ops with the most self time (self CPU, or self device time with ``device``)."""
    events = profile.key_averages()
    attribute = "self_device_time_total" if device else "self_cpu_time_total"
    total = sum(getattr(event, attribute) for event in events) or 1.0
    ranked = sorted(events, key=lambda event: getattr(event, attribute), reverse=True)[:count]
    return [
        {
            "op": event.key,
            "self_ms": getattr(event, attribute) / 1e3,
            "share": getattr(event, attribute) / total,
            "calls": event.count,
        }
        for event in ranked
    ]


def print_top_ops(title: str, ops: Sequence[dict[str, Any]]) -> None:
    print(f"{title}\n  {'self ms':>10} {'share':>6} {'calls':>6}  op")
    for op in ops:
        print(f"  {op['self_ms']:10.1f} {op['share']:6.1%} {op['calls']:6d}  {op['op']}")


def top_functions(profiler: cProfile.Profile, count: int | None) -> list[dict[str, Any]]:
    """The ``count`` (None: all) functions with the most cumulative time in a cProfile run."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short_path(filename)}:{line}({name})" if line else name
        rows.append({"function": where, "cumulative_s": cumulative, "own_s": own, "calls": calls})
    return sorted(rows, key=lambda row: row["cumulative_s"], reverse=True)[:count]


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "src/", "data_recipes/", "benchmarks/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return Path(filename).name


def print_top_functions(title: str, functions: Sequence[dict[str, Any]]) -> None:
    print(f"{title}\n  {'cum s':>8} {'own s':>8} {'calls':>7}  function")
    for row in functions:
        print(f"  {row['cumulative_s']:8.3f} {row['own_s']:8.3f} {row['calls']:7d}  {row['function']}")
