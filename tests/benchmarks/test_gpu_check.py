"""benchmarks/gpu_check.sh and its helper benchmarks/gpu_check.py, without a GPU.

The helper's parts run in-process (fast); the whole script runs in its dry mode (slow: every check is a
fresh interpreter importing torch), which must check every command it would run and write the JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cause_pl.inference.animator import SpeechToFaceAnimator

ROOT = Path(__file__).resolve().parents[2]
STEPS = (
    "pytest_cuda",
    "prepare",
    "synthetic_shards",
    "animate_command",
    "ganimation_bench_b25",
    "cause_fit_bf16",
    "ddp_cause",
    "ddp_ganimation",
    "preview_fit",
    "ganimation_bench_b64",
    "animate_bench",
)


def _helper():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _helper()


def test_parsers_read_pytest_and_animate_summaries():
    run = "....F.s\n=== short test summary info ===\nFAILED x\n= 5 passed, 1 failed, 1 skipped in 30.1s ="
    assert gpu_check.parse_pytest(run) == {"passed": 5, "failed": 1, "skipped": 1}
    assert gpu_check.parse_pytest("a::b\n\n6/622 tests collected (616 deselected) in 5.26s\n") == {
        "collected": 6,
        "deselected": 616,
    }
    line = "out.mp4: 1500 frames, 60.00 s of audio; 1234.5 frames/s (estimate 0.10 s, generate 0.80 s, encode 0.30 s)"
    found = gpu_check.parse_animate("progress...\n" + line)
    assert found["frames"] == 1500 and found["frames_per_s"] == 1234.5
    assert found["stage_seconds"] == {"estimate": 0.1, "generate": 0.8, "encode": 0.3}
    assert found["stage_frames_per_s"]["generate"] == pytest.approx(1875)
    assert gpu_check.parse_animate("no summary") == {}


def _records(work: Path) -> dict[str, dict]:
    return {record["name"]: record for record in map(json.loads, map(Path.read_text, (work / "steps").glob("*.json")))}


def test_steps_record_success_failure_timeouts_and_the_spent_budget(tmp_path, monkeypatch):
    work = tmp_path / "work"
    python = sys.executable
    (tmp_path / "result.json").write_text('{"rows": [{"setting": "bf16", "train img/s": 400.0, "correct": true}]}')
    cases = [
        ("ok", ["--kind", "json", "--json", str(tmp_path / "result.json"), "--", python, "-c", "print('hi')"]),
        ("failed", ["--", python, "-c", "import sys; print('boom'); sys.exit(3)"]),
        ("missing", ["--", str(tmp_path / "no-such-program")]),
        ("slow", ["--timeout", "5.5", "--", python, "-c", "import time; time.sleep(60)"]),
        ("dry", ["--dry", "--", python, "-c", "pass"]),
    ]
    started = time.monotonic()
    for name, extra in cases:
        assert gpu_check.main(["step", "--work", str(work), "--name", name, *extra]) == 0
    assert time.monotonic() - started < 30
    monkeypatch.setenv("GPU_CHECK_DEADLINE", str(time.time()))
    assert gpu_check.main(["step", "--work", str(work), "--name", "late", "--", python, "-c", "pass"]) == 0
    records = _records(work)
    assert {name: record["status"] for name, record in records.items()} == {
        "ok": "ok",
        "failed": "failed",
        "missing": "failed",
        "slow": "timeout",
        "dry": "dry",
        "late": "skipped",
    }
    assert records["ok"]["metrics"]["rows"][0]["train img/s"] == 400.0 and "hi" in records["ok"]["tail"]
    assert records["failed"]["returncode"] == 3 and "boom" in records["failed"]["tail"]

    out = tmp_path / "out" / "gpu_check.json"
    assert gpu_check.main(["assemble", "--work", str(work), "--out", str(out), "--mode", "real", "--elapsed", "7"]) == 0
    results = json.loads(out.read_text())
    assert [step["name"] for step in results["steps"]] == [name for name, _ in cases] + ["late"]
    assert results["counts"] == {"ok": 1, "failed": 2, "timeout": 1, "dry": 1, "skipped": 1}
    assert results["machine"]["torch"] == torch.__version__
    assert results["targets"] == {"ganimation_train_images_per_s_128px": 350.0, "animate_frames_per_s_128px": 1000.0}


def test_headline_compares_the_best_measurements_with_the_targets():
    steps = [
        {"name": "ganimation_bench_b25", "metrics": {"rows": [{"setting": "fp32", "train img/s": 200.0}]}},
        {
            "name": "ganimation_bench_b64",
            "metrics": {"rows": [{"setting": "bf16", "train img/s": 420.0, "correct": True}]},
        },
        {"name": "animate_command", "metrics": {"frames_per_s": 900.0}},
    ]
    headline = gpu_check.headline(steps)
    assert headline["ganimation_train_images_per_s_128px"] == 420.0
    assert headline["ganimation_best_setting"] == "bf16 (ganimation_bench_b64)"
    assert headline["meets_targets"] == {
        "ganimation_train_images_per_s_128px": True,
        "animate_frames_per_s_128px": False,
    }


def test_prepare_writes_checkpoints_the_animate_command_loads(tmp_path):
    assert gpu_check.main(["prepare", "--out", str(tmp_path), "--seconds", "0.5", "--image-size", "64"]) == 0
    animator = SpeechToFaceAnimator.from_checkpoints(tmp_path / "cause.ckpt", tmp_path / "ganimation.ckpt")
    assert animator.image_size == 64
    result = animator.animate(tmp_path / "speech.wav", tmp_path / "face.png", tmp_path / "a.mp4")
    assert result.frames == 13


@pytest.mark.slow
def test_dry_run_checks_every_step_and_writes_the_json(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "GPU_CHECK_WORK": str(tmp_path / "work")}
    env.pop("GPU_CHECK_OUT", None)
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = tmp_path / "out" / "gpu_check.json"
    assert result.stdout.strip().splitlines()[-1] == str(path)
    results = json.loads(path.read_text())
    assert results["mode"] == "dry"
    statuses = {step["name"]: step["status"] for step in results["steps"]}
    assert statuses == dict.fromkeys(STEPS, "dry"), {
        step["name"]: step["tail"][-500:] for step in results["steps"] if step["status"] != "dry"
    }
    pytest_step = next(step for step in results["steps"] if step["name"] == "pytest_cuda")
    assert pytest_step["metrics"]["collected"] >= 6
    assert set(results["headline"]["meets_targets"].values()) == {None}
