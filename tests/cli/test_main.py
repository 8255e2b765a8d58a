"""The ``cause-pl`` command line as a user runs it: fit, validate, estimate, table1 (subprocesses)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cause_pl.openface.writer import CSV_COLUMNS
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from cause_pl.synthetic.speech import synth_utterance
from tests.builders.media import write_wav

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_CONFIG = (
    "--config",
    ROOT / "experiments" / "cause" / "voxceleb2.yaml",
    "--config",
    ROOT / "experiments" / "cause" / "synthetic.yaml",
)
"""The synthetic CAUSE run: the VoxCeleb2 base config with the synthetic overlay."""


def cause_pl(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``cause-pl ARGS`` (the installed console script's module) and fail with its output."""
    command = [sys.executable, "-m", "cause_pl.cli.main", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def fit_overrides(shards: Path, out: Path, steps: int) -> list[str]:
    """Overrides that point the synthetic config at test shards and keep the run short and local."""
    return [
        f"--data.init_args.root={shards}",
        "--data.init_args.num_workers=0",
        "--data.init_args.train_samples_per_epoch=160",
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.log_per_au=false",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CNN fitted for 80 steps through the CLI on small synthetic shards (enough to beat the Zero baseline)."""
    tmp = tmp_path_factory.mktemp("cli")
    shards = tmp / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=4, max_seconds=4))
    cause_pl("fit", *SYNTHETIC_CONFIG, *fit_overrides(shards, tmp / "run", 80))
    checkpoints = sorted((tmp / "run").rglob("last.ckpt"))
    assert checkpoints, "fit wrote no last.ckpt"
    return shards, checkpoints[0], tmp


def test_usage_lists_commands():
    result = subprocess.run([sys.executable, "-m", "cause_pl.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "estimate" in result.stdout and "table1" in result.stdout
    result = subprocess.run([sys.executable, "-m", "cause_pl.cli.main", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command" in result.stderr


def test_fit_logs_metrics_with_baselines(trained):
    tmp = trained[2]
    metrics = next((tmp / "run").rglob("metrics.csv"))
    rows = [row for row in csv.DictReader(metrics.read_text().splitlines()) if row.get("val/mae")]
    assert rows and float(rows[-1]["val/zero/mae"]) > 0 and float(rows[-1]["val/mean/mae"]) > 0
    assert list((tmp / "run").rglob("au_report/*_val.md"))


def test_estimate_writes_openface_style_csv(trained, tmp_path):
    _, checkpoint, _ = trained
    utterance = synth_utterance(0, 0, seed=3, min_seconds=3, max_seconds=3)
    audio = write_wav(tmp_path / "speech.wav", np.repeat(utterance.wave[:, None], 2, axis=1), 16000)
    out = tmp_path / "aus.csv"
    cause_pl("estimate", audio, "--ckpt", checkpoint, "--out", out)
    rows = list(csv.reader(out.open()))
    header = [cell.strip() for cell in rows[0]]
    assert header == [*CSV_COLUMNS]
    assert len(rows) - 1 == len(utterance.aus)
    values = np.array([[float(cell) for cell in row] for row in rows[1:]])
    assert values[0, 0] == 1 and values[-1, 2] == pytest.approx((len(utterance.aus) - 1) / 25)
    assert (values[:, 5:] >= 0).all() and (values[:, 5:] <= 5).all()
    stdout = cause_pl("estimate", audio, "--ckpt", checkpoint, "--out", "-").stdout
    assert stdout == out.read_text()


def test_table1_markdown_and_csv(trained, tmp_path):
    shards, checkpoint, _ = trained
    out = tmp_path / "table1"
    cause_pl("table1", "--shards", shards, "--ckpt", checkpoint, "--out", out)
    markdown = out.with_suffix(".md").read_text()
    assert "| Zero |" in markdown and "| Mean |" in markdown and "| CNN |" in markdown
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(out.with_suffix(".csv").read_text()))}
    for row in rows.values():
        assert float(row["mae_ci_low"]) <= float(row["mae"]) <= float(row["mae_ci_high"])
    assert float(rows["CNN"]["mae"]) < float(rows["Zero"]["mae"])
