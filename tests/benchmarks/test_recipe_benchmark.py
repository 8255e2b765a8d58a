"""benchmarks/recipe.py runs end to end on a few short utterances: the recipe's process() and every stage,
with wall-clock rates and CPU seconds per audio second."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = (
    "process() (whole item)",
    "decode + resample (load_audio)",
    "log-mel",
    "OpenFace CSV",
    "alignment",
    "encoding",
)


def test_recipe_benchmark_prints_every_stage(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "recipe.py"), "--count", "2", "--seconds", "1"]
    command += ["--repeats", "1", "--profile-top", "3", "--out", str(tmp_path / "recipe.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| stage | seconds | audio s/s | vs decode | CPU s per audio s |" in done.stdout
    assert "the decode floor" in done.stdout and "cProfile of process()" in done.stdout
    rows = json.loads((tmp_path / "recipe.json").read_text())["rows"]
    assert [row["stage"] for row in rows] == list(STAGES)
    for row in rows:
        assert row["audio s/s"] > 0 and row["CPU s per audio s"] > 0, row
