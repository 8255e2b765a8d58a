"""The paper's CME baseline end to end on synthetic data (slow): emotion-labelled shards from the recipe
(``--targets emotions``), the shipped ``cme.yaml`` pair trained through ``cause-pl fit``, tested,
scored in Table 1, and a still face animated by the emotion track."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from PIL import Image

from cause_pl.media.mp4 import video_frame_count
from cause_pl.synthetic.speech import synth_utterance
from tests.cli.test_main import ROOT, cause_pl, fit_overrides

EXPERIMENTS = ROOT / "experiments"


def configs(*names: str) -> list[str | Path]:
    """``--config`` flags for shipped configs, in order."""
    return [item for name in names for item in ("--config", EXPERIMENTS / name)]


def latest_checkpoint(folder: Path) -> Path:
    return max(folder.rglob("*.ckpt"), key=lambda path: path.stat().st_mtime)


@pytest.mark.slow
def test_cme_runs_end_to_end_and_learns_the_emotions(tmp_path):
    data = tmp_path / "cme"
    recipe = [sys.executable, str(ROOT / "data_recipes" / "synthetic.py"), "--out", str(data), "--targets", "emotions"]
    sizes = ["--speakers", "8", "--utterances", "12", "--faces", "240", "--identities", "12", "--face_size", "64"]
    done = subprocess.run([*recipe, *sizes], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for corpus in ("speech_au", "faces"):
        index = json.loads((data / corpus / "index.json").read_text())
        assert index["targets"]["name"] == "emotions" and index["targets"]["kind"] == "distribution"

    cause_out = tmp_path / "cause"
    cause_configs = [
        "--config",
        EXPERIMENTS / "cause" / "voxceleb2.yaml",
        "--config",
        EXPERIMENTS / "cause" / "synthetic.yaml",
    ]
    cause_configs += ["--config", EXPERIMENTS / "cause" / "cme.yaml"]
    cause_pl(
        "fit", *cause_configs, *fit_overrides(data / "speech_au", cause_out, 300), "--model.init_args.log_per_au=true"
    )
    cause_ckpt = latest_checkpoint(cause_out)
    tested = cause_pl(
        "test", *cause_configs, *fit_overrides(data / "speech_au", tmp_path / "test", 1), "--ckpt_path", cause_ckpt
    )
    assert tested.returncode == 0
    rows = [row for row in csv.DictReader(next((tmp_path / "test").rglob("metrics.csv")).open()) if row.get("test/mae")]
    scores = {key: float(value) for key, value in rows[-1].items() if value}
    assert "test/happiness/mae" in scores and "test/contempt/ccc" in scores
    assert scores["test/mae"] < 0.85 * scores["test/mean/mae"] and scores["test/mae"] < 0.5 * scores["test/zero/mae"]

    table = tmp_path / "table1"
    cause_pl("table1", "--shards", data / "speech_au", "--ckpt", cause_ckpt, "--out", table)
    assert "| CNN |" in (tmp_path / "table1.md").read_text()

    gan_out = tmp_path / "gan"
    gan_configs = [
        "--config",
        EXPERIMENTS / "ganimation" / "celeba128.yaml",
        "--config",
        EXPERIMENTS / "ganimation" / "synthetic.yaml",
    ]
    gan_configs += ["--config", EXPERIMENTS / "ganimation" / "cme.yaml"]
    cause_pl(
        "fit",
        *gan_configs,
        f"--data.init_args.root={data / 'faces'}",
        "--data.init_args.num_workers=0",
        "--data.init_args.train_samples_per_epoch=64",
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={gan_out}",
        f"--trainer.logger.init_args.save_dir={gan_out}",
        "--trainer.enable_progress_bar=false",
    )
    gan_ckpt = latest_checkpoint(gan_out)
    assert next(gan_out.rglob("sample_grid/epoch000.png")).stat().st_size > 1000

    utterance = synth_utterance(7, 0, max_seconds=2.5)
    sf.write(tmp_path / "speech.wav", utterance.wave, utterance.sample_rate)
    Image.new("RGB", (64, 64), (180, 150, 130)).save(tmp_path / "face.png")
    video = tmp_path / "cme.mp4"
    cause_pl(
        "animate",
        "--audio", tmp_path / "speech.wav",
        "--face", tmp_path / "face.png",
        "--cause_ckpt", cause_ckpt,
        "--ganimation_ckpt", gan_ckpt,
        "--out", video,
        "--au_csv", tmp_path / "emotions.csv",
        "--no_align",
    )  # fmt: skip
    assert video.stat().st_size > 1000
    header = (tmp_path / "emotions.csv").read_text().splitlines()[0]
    assert header.endswith("neutral, happiness, surprise, sadness, anger, disgust, fear, contempt")
    frames = len((tmp_path / "emotions.csv").read_text().splitlines()) - 1
    assert frames == video_frame_count(len(utterance.wave), utterance.sample_rate, 25)
