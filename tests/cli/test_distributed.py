"""Long CLI runs: 2-process DDP on CPU (gloo) and a killed-then-resumed fit. Marked slow."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from tests.cli.test_main import ROOT, SYNTHETIC_CONFIG, cause_pl, fit_overrides

pytestmark = pytest.mark.slow


def last_metrics(run: Path, key: str) -> dict[str, float]:
    """The last row of the run's metrics.csv that has ``key``."""
    rows = [row for row in csv.DictReader(next(run.rglob("metrics.csv")).read_text().splitlines()) if row.get(key)]
    return {name: float(value) for name, value in rows[-1].items() if value}


@pytest.fixture(scope="module")
def uneven_shards(tmp_path_factory) -> Path:
    """Shards with uneven sample counts (shard size 3 over 8 utterances per speaker)."""
    shards = tmp_path_factory.mktemp("ddp") / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=9, shard_size=4, max_seconds=4))
    return shards


def test_two_process_fit_and_validate_match_one_process(uneven_shards, tmp_path):
    ddp = ["--trainer.accelerator=cpu", "--trainer.strategy=ddp", "--trainer.devices=2"]
    started = time.monotonic()
    cause_pl("fit", *SYNTHETIC_CONFIG, *fit_overrides(uneven_shards, tmp_path / "fit", 10), *ddp, timeout=900)
    assert time.monotonic() - started < 900
    checkpoint = next((tmp_path / "fit").rglob("last.ckpt"))
    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"] == 10

    common = [*SYNTHETIC_CONFIG, "--ckpt_path", checkpoint]
    cause_pl("validate", *common, *fit_overrides(uneven_shards, tmp_path / "one", 1), "--trainer.devices=1")
    cause_pl("validate", *common, *fit_overrides(uneven_shards, tmp_path / "two", 1), *ddp, timeout=900)
    one, two = last_metrics(tmp_path / "one", "val/mae"), last_metrics(tmp_path / "two", "val/mae")
    for key in ("val/mae", "val/mse", "val/pcc", "val/ccc", "val/zero/mae", "val/mean/mae", "val/num_utterances"):
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-7), key


def test_killed_fit_resumes_to_the_same_step_count(uneven_shards, tmp_path):
    steps = 60
    overrides = [
        *fit_overrides(uneven_shards, tmp_path / "run", steps),
        "--trainer.callbacks+=pytorch_lightning.callbacks.ModelCheckpoint",
        "--trainer.callbacks.every_n_train_steps=10",
        "--trainer.callbacks.save_last=true",
        f"--trainer.callbacks.dirpath={tmp_path / 'steps'}",
    ]
    command = [sys.executable, "-m", "cause_pl.cli.main", "fit", *map(str, SYNTHETIC_CONFIG), *overrides]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    last = tmp_path / "steps" / "last.ckpt"
    deadline = time.monotonic() + 600
    while not last.exists() and time.monotonic() < deadline:
        assert process.poll() is None, "fit ended before it could be killed"
        time.sleep(0.2)
    time.sleep(1.0)  # let the checkpoint file be complete
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_at = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < interrupted_at < steps
    cause_pl("fit", *SYNTHETIC_CONFIG, *overrides, "--ckpt_path", last)
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == steps
    resumed = last_metrics(tmp_path / "run", "val/mae")
    assert resumed["val/mae"] < resumed["val/zero/mae"]
