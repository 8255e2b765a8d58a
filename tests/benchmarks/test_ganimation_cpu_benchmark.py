"""benchmarks/ganimation_cpu.py: each (threads, batch) in its own process, rows against the default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cause_pl.cpus import usable_cpus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # 24-31 s of timed runs on 2 cores
def test_demo_model_rows_per_thread_count_and_batch_against_the_default(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "ganimation_cpu.py"), "--models", "demo", "--repeats", "1"]
    command += ["--variants", "channels_last", "--batches", "4", "2", "--out", str(tmp_path / "table.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "table.json").read_text())
    cores = usable_cpus()
    expected = [(cores, 4, "fp32"), (cores, 4, "channels_last")]
    expected += [(threads, 4, "fp32") for threads in range(1, cores)] + [(cores, 2, "fp32")]
    assert [(row["threads"], row["batch"], row["setting"]) for row in rows] == expected
    assert rows[0]["vs default"] == 1.0
    for row in rows:
        assert row["train img/s"] > 0 and row["correct"]
        assert row["vs default"] == row["train img/s"] / rows[0]["train img/s"]
    assert done.stdout.count("$ ") == len(expected) - 1  # one fresh process per (threads, batch)
