"""``cause-pl demo``: the quick plan in the default suite, the full ``make demo`` plan as a slow test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile

from cause_pl.media.mp4 import video_frame_count
from cause_pl.openface.reader import read_openface_csv
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_main import cause_pl

STAGES = ["data", "cause", "ganimation", "evaluate", "animate"]


def _check_outputs(out, image_size: int) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["seconds"]) == STAGES
    assert [name for name, path in summary["files"].items() if not Path(path).exists()] == []
    metrics = (out / "metrics.md").read_text()
    assert all(f"| {method} |" in metrics for method in ("Zero", "Mean", "CNN"))
    wave, rate = soundfile.read(out / "speech.wav", dtype="float32")
    video = decode_mp4(out / "animation.mp4")  # decodes every frame: the file is playable
    assert video.frames.shape == (video_frame_count(len(wave), rate, 25), image_size, image_size, 3)
    assert abs(video.audio_seconds - len(wave) / rate) <= 1 / 25
    predicted, true = read_openface_csv(out / "predicted_aus.csv"), read_openface_csv(out / "true_aus.csv")
    assert len(predicted) == len(true) == len(video.frames) and true.valid.any()
    return summary


def test_quick_demo_makes_everything_it_lists(quick_demo):
    summary = _check_outputs(quick_demo.out, image_size=32)
    assert summary["scores"]["animate_frames_per_second"] > 0


@pytest.mark.slow
def test_make_demo_plan_end_to_end_learns(tmp_path):
    out = tmp_path / "demo_out"
    result = cause_pl("demo", "--out", out, timeout=1800)
    assert "The demo finished" in result.stdout and "animation.mp4" in result.stdout
    summary = _check_outputs(out, image_size=64)
    scores = summary["scores"]
    assert scores["cnn_mae"] < 0.8 * scores["mean_mae"] and scores["cnn_mae"] < 0.8 * scores["zero_mae"]
