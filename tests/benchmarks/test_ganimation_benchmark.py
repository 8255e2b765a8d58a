"""benchmarks/ganimation.py runs end to end on the demo's model: training and inference rates per
setting, and the paper's tiled generator ("before") equal to the package's within float32 rounding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_model_with_the_tiled_generator_side_by_side(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "ganimation.py"), "--demo", "--batch-size", "2"]
    command += ["--repeats", "1", "--warmup-cycles", "1", "--infer-iters", "1", "--profile", ""]
    command += ["--settings", "fp32", "tiled", "--out", str(tmp_path / "ganimation.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GANimation demo model, 64 px, batch 2" in done.stdout
    rows = {row["setting"]: row for row in json.loads((tmp_path / "ganimation.json").read_text())["rows"]}
    assert set(rows) == {"fp32", "tiled"}
    assert rows["tiled"]["correct"] and rows["tiled"]["max abs diff"] < 1e-4
    assert all(row["train img/s"] > 0 and row["infer img/s"] > 0 for row in rows.values())


def test_the_demo_model_is_timed_on_training_steps_not_on_its_critic_warm_up() -> None:
    """The demo trains a critic-only AU warm-up epoch first; timing those batches would report the
    critic's speed as the GAN's, so the benchmark builds the demo model without the warm-up."""
    build = (
        "import argparse, sys; sys.path.insert(0, sys.argv[1]); import ganimation; "
        "model = ganimation.build_model(argparse.Namespace(demo=True, device='cpu'), ganimation.Setting('fp32')); "
        "print(model.hparams.critic_warmup_steps, model.hparams.image_size, model.hparams.g_base_channels)"
    )
    done = subprocess.run(
        [sys.executable, "-c", build, str(ROOT / "benchmarks")], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "64", "16"]
