"""benchmarks/ddp.py trains CAUSE through the real CLI with 1 process and with 2 DDP processes (gloo) and
writes a report whose rates come from every rank's step clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_benchmark_trains_one_and_two_processes(tmp_path: Path):
    out = tmp_path / "ddp.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ddp.py"), "--steps", "6", "--warmup", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    one, two = report["rows"]
    assert (one["processes"], two["processes"]) == (1, 2)
    for row in (one, two):
        assert row["steps_timed"] == 4  # steps 3-6: the end of step 2 starts the clock
        assert row["samples_per_s"] > 0 and row["frames_per_s"] > row["samples_per_s"]
    # Both ranks' samples are counted: a 2-process step trains on twice the samples of a 1-process step.
    samples_per_step = [row["samples_per_s"] * row["ms_per_step"] / 1000 for row in (one, two)]
    assert samples_per_step == pytest.approx([16, 32], rel=0.01)
    assert report["speedup"] == pytest.approx(two["samples_per_s"] / one["samples_per_s"], abs=0.001)
    assert "| 2 |" in done.stdout
