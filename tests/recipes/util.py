"""Run data recipes the way a user does (a subprocess) and read their output back with webdataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import webdataset as wds

ROOT = Path(__file__).resolve().parents[2]


def recipe_command(name: str, *args: str | Path) -> list[str]:
    """The command line that runs ``data_recipes/NAME.py`` with ``args``."""
    return [sys.executable, str(ROOT / "data_recipes" / f"{name}.py"), *map(str, args)]


def run_recipe(name: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a recipe to completion; fail the test with its output if it fails."""
    result = subprocess.run(recipe_command(name, *args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"recipe {name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def read_split(out: Path, split: str) -> list[dict]:
    """Every decoded sample of a split, in shard order, read with plain webdataset."""
    index = json.loads((out / "index.json").read_text())
    urls = [str(out / shard["name"]) for shard in index["splits"][split]["shards"]]
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))


def read_rejected(out: Path) -> list[dict]:
    """The records of ``rejected.jsonl``."""
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
