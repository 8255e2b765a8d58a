"""The recipes as commands: --help from the docstring, --print_config, and runs from the printed YAML.

The VoxCeleb2 and CelebA fixtures run their recipe from a config file (see ``run_recipe_from_config``);
here the synthetic recipe runs from flags and from the config, which must write identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.recipes.util import printed_config, read_split, recipe_output, run_recipe, run_recipe_from_config

FLAG_HELP = {
    "voxceleb2": "a fraction in (0, 1), a count, or 0 for none",
    "celeba": "side of the square face crop in pixels",
    "synthetic": "speakers; 1/6 each held out for val and test",
}
REQUIRED = {
    "voxceleb2": ["--media", "m", "--openface", "o", "--out", "x"],
    "celeba": ["--images", "i", "--partition", "p.txt", "--openface", "o", "--out", "x"],
    "synthetic": ["--out", "x"],
}
TINY = ["--speakers", "3", "--utterances", "2", "--min_seconds", "1", "--max_seconds", "2", "--faces", "6"]
TINY += ["--identities", "3", "--face_size", "32", "--shard_size", "2", "--face_shard_size", "2", "--workers", "1"]


@pytest.mark.parametrize("name", list(FLAG_HELP))
def test_help_shows_the_docstring_per_flag(name):
    code, out = recipe_output(name, "--help")
    assert code == 0 and f"usage: {name}.py" in out
    assert FLAG_HELP[name] in " ".join(out.split())
    assert "--config" in out and "--print_config" in out and "--shard_size" in out


@pytest.mark.parametrize("name", list(FLAG_HELP))
def test_printed_config_round_trips(name, tmp_path):
    printed = printed_config(name, *REQUIRED[name], "--workers", "3", "--shard_size", "7")
    config = yaml.safe_load(printed)
    assert config["workers"] == 3 and config["shard_size"] == 7 and config["out"] == "x"
    path = tmp_path / "config.yaml"
    path.write_text(printed)
    assert printed_config(name, "--config", path) == printed
    assert yaml.safe_load(printed_config(name, "--config", path, "--workers", "1"))["workers"] == 1


def test_frontend_is_a_group_of_flags():
    config = yaml.safe_load(printed_config("voxceleb2", *REQUIRED["voxceleb2"], "--frontend.n_mels", "64"))
    assert config["frontend"]["n_mels"] == 64 and config["frontend"]["sample_rate"] == 16000


def test_dashed_flags_and_bad_values_are_usage_errors(capsys):
    assert recipe_output("celeba", *REQUIRED["celeba"], "--shard-size", "3")[0] == 2
    assert "did you mean --shard_size?" in capsys.readouterr().err
    assert recipe_output("synthetic", *REQUIRED["synthetic"], "--frontend.fps", "7")[0] == 2
    assert "must be a multiple of fps" in capsys.readouterr().err
    assert recipe_output("synthetic", *REQUIRED["synthetic"], "--speakers", "2")[0] == 2
    assert "speakers must be >= 3" in capsys.readouterr().err


def test_synthetic_from_config_writes_identical_shards(tmp_path):
    flags, config = tmp_path / "flags", tmp_path / "config"
    run_recipe("synthetic", "--out", flags, *TINY, "--frontend.n_mels", "40")
    run_recipe_from_config("synthetic", tmp_path, "--out", config, *TINY, "--frontend.n_mels", "40")
    assert json.loads((config / "speech_au" / "index.json").read_text())["frontend"]["n_mels"] == 40
    assert read_split(config / "speech_au", "train")[0]["mel.npy"].shape[1] == 40
    files = sorted(path.relative_to(flags) for path in flags.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(config) for path in config.rglob("*") if path.is_file())
    assert Path("speech_au/index.json") in files and Path("faces/index.json") in files
    for name in files:
        assert (config / name).read_bytes() == (flags / name).read_bytes(), name
