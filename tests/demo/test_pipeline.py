"""``cause-pl demo``: the quick plan in the default suite, the full ``make demo`` plan as a slow test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile

from cause_pl.demo.scoring import GAN_SCORES
from cause_pl.media.mp4 import video_frame_count
from cause_pl.openface.reader import read_openface_csv
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_main import cause_pl, run_main

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
    second_process_log = (quick_demo.out / "logs" / "faces_and_reader.log").read_text()
    assert "faces: 100%" in second_process_log  # the face corpus is written beside the speech corpus
    scores = summary["scores"]
    assert scores["animate_frames_per_second"] > 0
    gan_scores = [scores[f"gan_{name}"] for name in GAN_SCORES]
    assert all(0 < value < 1 for value in gan_scores)


@pytest.mark.slow
def test_make_demo_plan_end_to_end_learns(tmp_path):
    """``make demo`` in fp32 (the path of CPUs without native bf16) meets the demo's quality bar:
    CAUSE's CNN at <= 0.6x the Mean baseline's MAE; GANimation's edits, read by the independent AU
    reader, closer to the target AUs than the input is (<= 0.75x the error of copying the input;
    measured 0.69 for the demo's seed on a Zen 4 with AVX-512, so issue 16's 0.7 holds there, but
    0.72 there with AVX-512 turned off and 0.747 on a Zen 3 (no AVX-512). Other training seeds read
    0.65-0.73 on the Zen 4 and 0.70-0.77 on the Zen 3 (benchmarks/RESULTS.md), so this bar holds
    the demo's own seed on the machines measured, not every seed) while keeping identity >= 0.95."""
    out = tmp_path / "demo_out"
    result = cause_pl("demo", "--out", out, "--precision", "32-true", timeout=1800)
    assert "The demo finished" in result.stdout and "animation.mp4" in result.stdout
    summary = _check_outputs(out, image_size=64)
    scores = summary["scores"]
    assert scores["cnn_mae"] <= 0.6 * scores["mean_mae"] and scores["cnn_mae"] < 0.5 * scores["zero_mae"]
    assert scores["gan_au_error"] <= 0.75 * scores["gan_copy_input_au_error"]
    assert scores["gan_identity"] >= 0.95
    assert (out / "logs" / "faces_and_reader.log").exists()  # the background job's output


def test_demo_rejects_an_unknown_precision_before_building_anything(tmp_path: Path, capfd) -> None:
    code, _, err = run_main(capfd, ["demo", "--out", tmp_path / "out", "--precision", "16"])
    assert code == 2 and "precision" in err
    assert not (tmp_path / "out").exists()
