"""GANimation CPU training settings: one table of training images/s for the demo's and the paper's model.

    .venv/bin/python benchmarks/ganimation_cpu.py                 # both models (~25 min on 2 cores)
    .venv/bin/python benchmarks/ganimation_cpu.py --models demo   # the demo's 64-px model only
    .venv/bin/python benchmarks/ganimation_cpu.py --models demo --variants channels_last --batches 4 2 --repeats 1
                                                                  # a quick look: fewer settings and small batches

For each model, ``benchmarks/ganimation.py`` runs once per (threads, batch size) with the settings
that change the arithmetic side by side (fp32 = the package's generator, ``tiled`` = the generator
as the paper writes it, what the package ran before, ``channels_last``, ``compile``; ``bf16`` only
with ``--bf16``, as it is a loss on CPUs without native bf16). Every run is a fresh process, so
thread settings do not leak between rows. Rows: train img/s and the ratio to the default
(the package's fp32 at all cores and the model's usual batch); ``correct``: the setting's generator
output is within tolerance of fp32's on the same weights and input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

from cause_pl.cpus import usable_cpus

MODELS = {
    "demo": {"flags": ["--demo", "--warmup-cycles", "3"], "batches": (16, 8, 32)},
    "paper": {"flags": ["--warmup-cycles", "1"], "batches": (4, 8)},
}
"""The demo's 64-px model (trained by ``cause-pl demo``) and the paper's 128-px model; their batch
sizes, the usual one first."""
VARIANTS = ("tiled", "channels_last", "compile")
COLUMNS = ("model", "threads", "batch", "setting", "train img/s", "vs default", "max abs diff", "correct", "note")


def run_benchmark(model: str, threads: int, batch: int, settings: list[str], repeats: int, folder: Path) -> list[dict]:
    """``benchmarks/ganimation.py`` in a fresh process; its rows (inference checks each setting against fp32)."""
    out = folder / f"{model}_t{threads}_b{batch}.json"
    command = [
        sys.executable,
        str(Path(__file__).with_name("ganimation.py")),
        *MODELS[model]["flags"],
        "--threads",
        str(threads),
        "--batch-size",
        str(batch),
        "--repeats",
        str(repeats),
        "--profile",
        "",
        "--settings",
        *settings,
        "--out",
        str(out),
    ]
    print(f"$ {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True)
    return json.loads(out.read_text())["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3, help="timed training cycles per setting (median)")
    parser.add_argument(
        "--variants",
        nargs="*",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="settings timed beside fp32 at the default threads and batch",
    )
    parser.add_argument("--bf16", action="store_true", help="also bf16 (only a win with native bf16)")
    parser.add_argument(
        "--batches", nargs="+", type=int, help="batch sizes, the first as the default (default: each model's own)"
    )
    parser.add_argument("--out", type=Path, help="also save the table as JSON here")
    args = parser.parse_args()
    cores = usable_cpus()
    variants = [*args.variants, *(["bf16"] if args.bf16 else [])]
    table = []
    with tempfile.TemporaryDirectory(prefix="ganimation-cpu-") as folder:
        for model in args.models:
            default_batch, *other_batches = args.batches or MODELS[model]["batches"]
            default = None
            runs = [(cores, default_batch, ["fp32", *variants])]
            runs += [(threads, default_batch, ["fp32"]) for threads in range(1, cores)]
            runs += [(cores, batch, ["fp32"]) for batch in other_batches]
            for threads, batch, settings in runs:
                for row in run_benchmark(model, threads, batch, settings, args.repeats, Path(folder)):
                    entry = {"model": model, "threads": threads, "batch": batch, **row}
                    default = default or entry["train img/s"]
                    entry["vs default"] = entry["train img/s"] / default
                    table.append(entry)
    harness.print_header(COLUMNS)
    for entry in table:
        harness.print_row(COLUMNS, entry)
    if args.out:
        args.out.write_text(json.dumps(table, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
