"""Training configs: one base per model plus small overlays, merged by LightningCLI (later configs win).

Each case asks the real LightningCLI for its effective config (``--print_config``) and checks that an
overlay changes exactly what it is meant to change and nothing else.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from cause_pl.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CAUSE = ROOT / "experiments" / "cause"
GANIMATION = ROOT / "experiments" / "ganimation"
ARCHITECTURES = ("mlp", "rnn", "cnn", "dcnn")


def effective_config(*configs: Path) -> dict[str, Any]:
    """The config LightningCLI ``fit`` resolves from ``configs``, in order."""
    stdout = io.StringIO()
    arguments = [item for config in configs for item in ("--config", str(config))]
    with contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as exit_info:
        main(["fit", *arguments, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(stdout.getvalue())


def differences(base: Any, other: Any, path: str = "") -> set[str]:
    """Dotted paths of the values that differ between two nested configs."""
    if isinstance(base, dict) and isinstance(other, dict):
        return {
            diff
            for key in base.keys() | other.keys()
            for diff in differences(base.get(key), other.get(key), f"{path}.{key}")
        }
    return set() if base == other else {path.lstrip(".")}


@pytest.fixture(scope="module")
def cause_base() -> dict[str, Any]:
    return effective_config(CAUSE / "voxceleb2.yaml")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_overlay_changes_only_the_net_and_the_run_names(cause_base, arch):
    config = effective_config(CAUSE / "voxceleb2.yaml", CAUSE / f"{arch}.yaml")
    assert config["model"]["init_args"]["arch"] == arch
    run_dir = f"runs/cause-{arch}"
    assert config["trainer"]["default_root_dir"] == run_dir
    assert config["trainer"]["logger"]["init_args"]["save_dir"] == run_dir
    allowed = {
        "model.init_args.arch",
        "trainer.default_root_dir",
        "trainer.logger.init_args.name",
        "trainer.logger.init_args.save_dir",
    }
    assert differences(cause_base, config) <= allowed


def test_overlays_are_small():
    """The point of overlays: an architecture config is a few lines, not a copy of the base."""
    base_lines = len((CAUSE / "voxceleb2.yaml").read_text().splitlines())
    for arch in ARCHITECTURES:
        settings = [line for line in (CAUSE / f"{arch}.yaml").read_text().splitlines() if not line.startswith("#")]
        assert len(settings) <= 10 < base_lines


def test_synthetic_overlay_swaps_the_data_and_keeps_the_recipe(cause_base):
    config = effective_config(CAUSE / "voxceleb2.yaml", CAUSE / "synthetic.yaml", CAUSE / "mlp.yaml")
    assert config["data"]["init_args"]["root"] == "data/synthetic/speech_au"
    assert config["trainer"]["accelerator"] == "cpu"
    assert config["trainer"]["logger"]["class_path"].endswith("CSVLogger")
    assert config["model"]["init_args"]["arch"] == "mlp"
    # what the overlay does not mention comes from the base
    assert config["trainer"]["callbacks"] == cause_base["trainer"]["callbacks"]
    assert config["model"]["init_args"]["scheduler"] == cause_base["model"]["init_args"]["scheduler"]


def test_ganimation_synthetic_overlay_shrinks_the_paper_model():
    paper = effective_config(GANIMATION / "celeba128.yaml")
    small = effective_config(GANIMATION / "celeba128.yaml", GANIMATION / "synthetic.yaml")
    assert paper["model"]["init_args"]["image_size"] == 128 and small["model"]["init_args"]["image_size"] == 64
    assert small["data"]["init_args"]["image_size"] == small["model"]["init_args"]["image_size"]
    # the loss weights are the paper's in both
    for weight in ("lambda_gp", "lambda_cond", "lambda_cycle", "lambda_attn_mean", "lambda_attn_tv"):
        assert small["model"]["init_args"][weight] == paper["model"]["init_args"][weight]
