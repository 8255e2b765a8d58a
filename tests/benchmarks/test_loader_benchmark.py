"""benchmarks/loader.py runs end to end on a tiny corpus and prints every row, the plain-webdataset peer included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loader_benchmark_prints_all_four_rows(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "loader.py"), "--shards", str(tmp_path / "shards")]
    command += ["--utterances", "24", "--shard-size", "2", "--batch-size", "4", "--crop-frames", "32"]
    command += ["--batches", "3", "--warmup", "1", "--repeats", "1", "--out", str(tmp_path / "loader.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("(a) datamodule", "(b) per_file_npy", "(c) raw_tar_read", "(d) plain_webdataset", "a/d ="):
        assert row in done.stdout, row
    rates = json.loads((tmp_path / "loader.json").read_text())["samples_per_s"]
    assert set(rates) == {"datamodule", "per_file_npy", "raw_tar_read", "plain_webdataset"}
    assert all(rate > 0 for rate in rates.values())
