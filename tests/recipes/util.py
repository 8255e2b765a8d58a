"""Run data recipes the way a user does (a subprocess) and read their output back with webdataset."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import webdataset as wds

from cause_pl.au import NUM_AUS, au_index
from cause_pl.cli.command import run_as_command
from tests.builders.media import add_click, tone

ROOT = Path(__file__).resolve().parents[2]
SR = 16000
LIPS_PART = au_index(25)


def recipe_command(name: str, *args: str | Path) -> list[str]:
    """The command line that runs ``data_recipes/NAME.py`` with ``args``."""
    return [sys.executable, str(ROOT / "data_recipes" / f"{name}.py"), *map(str, args)]


def run_recipe(name: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a recipe to completion; fail the test with its output if it fails."""
    result = subprocess.run(recipe_command(name, *args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"recipe {name} failed:\n{result.stdout}\n{result.stderr}"
    return result


@cache
def recipe_module(name: str) -> ModuleType:
    """The module ``data_recipes/NAME.py``, loaded into this process (its helpers are tested directly)."""
    spec = importlib.util.spec_from_file_location(f"data_recipes_{name}", ROOT / "data_recipes" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def recipe_function(name: str) -> Callable[..., int]:
    """The function ``data_recipes/NAME.py`` runs, loaded into this process (for --help and --print_config)."""
    return getattr(recipe_module(name), name)


def run_in_process(name: str, *args: str | Path) -> int:
    """Exit code of a recipe run in this process as ``NAME.py ARGS`` (0, or the code of its SystemExit)."""
    try:
        return run_as_command(recipe_function(name), list(map(str, args)), prog=f"{name}.py")
    except SystemExit as exited:
        return int(exited.code or 0)


def recipe_output(name: str, *args: str | Path) -> tuple[int, str]:
    """Exit code and stdout of a recipe run in this process: for arguments that exit before any work."""
    stdout = io.StringIO()
    with redirect_stdout(stdout), pytest.raises(SystemExit) as exited:
        run_as_command(recipe_function(name), list(map(str, args)), prog=f"{name}.py")
    return exited.value.code or 0, stdout.getvalue()


def printed_config(name: str, *args: str | Path) -> str:
    """The YAML a recipe's ``--print_config`` prints for ``args``."""
    code, printed = recipe_output(name, *args, "--print_config")
    assert code == 0
    return printed


def run_recipe_from_config(name: str, folder: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """Run a recipe from the config file ``--print_config`` prints for ``args``, as a user can."""
    config = folder / f"{name}.yaml"
    config.write_text(printed_config(name, *args))
    assert printed_config(name, "--config", config) == config.read_text()
    return run_recipe(name, "--config", config)


def read_split(out: Path, split: str) -> list[dict]:
    """Every decoded sample of a split, in shard order, read with plain webdataset."""
    index = json.loads((out / "index.json").read_text())
    urls = [str(out / shard["name"]) for shard in index["splits"][split]["shards"]]
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))


def read_rejected(out: Path) -> list[dict]:
    """The records of ``rejected.jsonl``."""
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]


def marked_aus(frames: int, event_frame: int, seed: int) -> np.ndarray:
    """Smooth random AUs, with AU25 zero except 5.0 on the (0-based) frame of the audio event."""
    rng = np.random.default_rng(seed)
    aus = np.clip(np.cumsum(rng.normal(0, 0.1, (frames, NUM_AUS)), axis=0) + 1.0, 0, 5)
    aus[:, LIPS_PART] = 0.0
    aus[event_frame, LIPS_PART] = 5.0
    return aus.round(2)


def utterance_audio(seconds: float, click_at: float) -> np.ndarray:
    """A quiet tone of ``seconds`` at ``SR`` with a click at ``click_at`` s: the event ``marked_aus`` marks."""
    return add_click(tone(seconds, SR, amplitude=0.05), SR, click_at)


def event_frame(mel: np.ndarray) -> int:
    """The mel frame of the click: the loudest over all bands."""
    return int(np.argmax(mel.astype(np.float32).sum(axis=1)))
