"""benchmarks/streaming.py --quick runs and prints its table (PyTorch, onnxruntime and latency columns)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # 14-17 s of timed runs on 2 cores
def test_streaming_benchmark_quick_prints_a_full_table():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "streaming.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:] if line.startswith("| ")]
    assert header[:4] == ["arch", "lookahead", "window ms", "torch ms/hop"] and "emission p95 ms" in header
    assert [row[:3] for row in rows] == [["causal_cnn", "2", "40"], ["mlp", "0", "80"]]
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        assert float(cells["torch ms/hop"]) > 0 and float(cells["onnx ms/hop"]) > 0
        assert float(cells["emission p95 ms"]) >= float(cells["algorithmic ms"]) - 1
    assert dict(zip(header, rows[0], strict=True))["algorithmic ms"] == "100"  # 40 ms window, 2 frames ahead
