"""Every ``cause-pl`` command besides LightningCLI's: --help from the docstring, --print_config, and a run
from the printed YAML (``--config``) that reproduces the run from flags. In-process, on the quick demo's files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile
import yaml

from cause_pl.cli.main import main
from tests.cli.test_main import ROOT

SHIPPED_SWEEP = ROOT / "experiments" / "sweeps" / "cause_arch_lr.yaml"
FLAG_HELP = {
    "estimate": "frames per chunk (memory bound)",
    "animate": "multiply AU intensities (0 = still face)",
    "table1": "speech_au shard directory (index.json)",
    "ganimation-eval": "training steps of the AU regressor",
    "demo": "tiny data and few steps",
    "sweep": "seed of the random search",
    "export": "folder the .onnx files are written to",
    "stream": "milliseconds of audio per chunk",
    "mos-build": "still-face videos per listener captioned with the rating to give",
    "mos-score": "attention checks a listener may get wrong and still count",
    "import-ganimation": "the source critic's weights; without it the critic is untrained",
}


def cause_pl(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``cause-pl ARGS`` in this process: exit code, stdout and stderr."""
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exited:
        code = exited.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def printed_config(capsys, tmp_path: Path, *args: str | Path) -> Path:
    """The YAML ``--print_config`` prints for ``args``, saved to a file; printing it back gives the same."""
    split = args.index("--") if "--" in args else len(args)  # sweep's overrides come last
    code, printed, err = cause_pl(capsys, *args[:split], "--print_config", *args[split:])
    assert code == 0, err
    path = tmp_path / f"{args[0]}.yaml"
    path.write_text(printed)
    assert cause_pl(capsys, args[0], "--config", path, "--print_config")[1] == printed
    return path


@pytest.mark.parametrize("command", list(FLAG_HELP))
def test_help_shows_the_docstring_per_flag(capsys, command):
    code, out, _ = cause_pl(capsys, command, "--help")
    assert code == 0 and f"usage: cause-pl {command}" in out
    assert FLAG_HELP[command] in " ".join(out.split())
    assert "--config" in out and "--print_config" in out


@pytest.mark.parametrize("command", ["table1", "ganimation-eval"])
def test_evaluation_commands_read_shards_from_a_shard_url(capsys, command):
    code, out, _ = cause_pl(capsys, command, "--help")
    assert code == 0 and "--shard_url" in out and "pipe:aws s3 cp" in " ".join(out.split())


def test_estimate_from_config_writes_the_same_csv(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    args = ["estimate", files["speech"], "--ckpt", files["cause_checkpoint"], "--chunk_frames", "40"]
    assert cause_pl(capsys, *args, "--out", tmp_path / "flags.csv")[0] == 0
    config = printed_config(capsys, tmp_path, *args, "--out", tmp_path / "config.csv")
    assert yaml.safe_load(config.read_text())["chunk_frames"] == 40
    code, _, err = cause_pl(capsys, "estimate", "--config", config)
    assert code == 0, err
    assert (tmp_path / "config.csv").read_bytes() == (tmp_path / "flags.csv").read_bytes()


def test_table1_from_config_writes_the_same_table(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    shards, checkpoint, copy = files["data"] / "speech_au", files["cause_checkpoint"], tmp_path / "copy.ckpt"
    shutil.copy(checkpoint, copy)
    args = ["table1", "--shards", shards, "--ckpt", checkpoint, copy, "--split", "val"]
    code, from_flags, err = cause_pl(capsys, *args, "--out", tmp_path / "table1")
    assert code == 0, err
    config = printed_config(capsys, tmp_path, *args, "--out", tmp_path / "table1")
    assert yaml.safe_load(config.read_text())["ckpt"] == [str(checkpoint), str(copy)]
    markdown = (tmp_path / "table1.md").read_text()
    assert "val split" in markdown and "| CNN (cause_cnn) |" in markdown and "| CNN (copy) |" in markdown
    code, from_config, err = cause_pl(capsys, "table1", "--config", config)
    assert code == 0, err
    assert from_config == from_flags and (tmp_path / "table1.md").read_text() == markdown


def test_ganimation_eval_from_config_gives_the_same_scores(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    args = ["ganimation-eval", "--ckpt", files["ganimation_checkpoint"], "--shards", files["data"] / "faces"]
    args += ["--reader_steps", "3", "--batch_size", "4", "--seed", "1"]
    code, from_flags, err = cause_pl(capsys, *args, "--out", tmp_path / "scores.json")
    assert code == 0, err
    config = printed_config(capsys, tmp_path, *args, "--out", tmp_path / "scores.json")
    scores = (tmp_path / "scores.json").read_text()
    assert json.loads(scores)["faces"] > 0
    assert cause_pl(capsys, "ganimation-eval", "--config", config)[1] == from_flags
    assert (tmp_path / "scores.json").read_text() == scores


def moved_shards(shards: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a folder holding only ``shards``' index.json, a folder elsewhere holding only its shards)."""
    manifest, bucket = tmp_path / "manifest", tmp_path / "bucket"
    manifest.mkdir()
    bucket.mkdir()
    shutil.copy(shards / "index.json", manifest)
    for shard in shards.glob("*.tar"):
        shutil.copy(shard, bucket)
    return manifest, bucket


def test_table1_reads_shards_through_a_pipe_template(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    shards, checkpoint = files["data"] / "speech_au", files["cause_checkpoint"]
    manifest, bucket = moved_shards(shards, tmp_path)
    common = ["table1", "--ckpt", checkpoint, "--split", "val"]
    code, _, err = cause_pl(capsys, *common, "--shards", shards, "--out", tmp_path / "local")
    assert code == 0, err
    template = f"pipe:cat {bucket}/{{name}}"
    args = [*common, "--shards", manifest, "--shard_url", template, "--out", tmp_path / "piped"]
    config = printed_config(capsys, tmp_path, *args)
    assert yaml.safe_load(config.read_text())["shard_url"] == template
    code, _, err = cause_pl(capsys, "table1", "--config", config)
    assert code == 0, err
    assert (tmp_path / "piped.csv").read_text() == (tmp_path / "local.csv").read_text()
    assert "| CNN |" in (tmp_path / "piped.md").read_text()


def test_ganimation_eval_reads_shards_through_a_path_template(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    shards = files["data"] / "faces"
    manifest, bucket = moved_shards(shards, tmp_path)
    common = ["ganimation-eval", "--ckpt", files["ganimation_checkpoint"], "--reader_steps", "3", "--batch_size", "4"]
    code, local, err = cause_pl(capsys, *common, "--shards", shards, "--out", tmp_path / "local.json")
    assert code == 0, err
    args = [*common, "--shards", manifest, "--shard_url", f"{bucket}/{{name}}", "--out", tmp_path / "moved.json"]
    code, moved, err = cause_pl(capsys, *args)
    assert code == 0, err
    assert moved == local and json.loads((tmp_path / "moved.json").read_text())["faces"] > 0
    assert (tmp_path / "moved.json").read_text() == (tmp_path / "local.json").read_text()


def test_animate_from_config_renders_the_same_frames(capsys, quick_demo, tmp_path):
    files = quick_demo.files
    wave, rate = soundfile.read(files["speech"], dtype="float32")
    soundfile.write(tmp_path / "speech.wav", wave[:rate], rate)  # one second is enough
    args = ["animate", "--audio", tmp_path / "speech.wav", "--face", files["face"]]
    args += ["--cause_ckpt", files["cause_checkpoint"], "--ganimation_ckpt", files["ganimation_checkpoint"]]
    args += ["--au_scale", "1.5", "--smoothing", "3", "--bf16=false"]
    outputs = {"flags": tmp_path / "flags", "config": tmp_path / "config"}
    for folder in outputs.values():
        folder.mkdir()
    run_args = {
        name: ["--out", out / "a.mp4", "--au_csv", out / "a.csv", "--strip", out / "a.png"]
        for name, out in outputs.items()
    }
    code, _, err = cause_pl(capsys, *args, *run_args["flags"])
    assert code == 0, err
    config = printed_config(capsys, tmp_path, *args, *run_args["config"])
    assert yaml.safe_load(config.read_text())["au_scale"] == 1.5
    code, _, err = cause_pl(capsys, "animate", "--config", config)
    assert code == 0, err
    for name in ("a.csv", "a.png"):
        assert (outputs["config"] / name).read_bytes() == (outputs["flags"] / name).read_bytes(), name


def test_demo_config_round_trips(capsys, tmp_path):
    config = printed_config(capsys, tmp_path, "demo", "--out", tmp_path / "demo", "--workers", "1", "--quick")
    expected = {"out": str(tmp_path / "demo"), "workers": 1, "quick": True, "precision": "auto"}
    assert yaml.safe_load(config.read_text()) == expected
    code, _, err = cause_pl(capsys, "demo", "--config", config, "--workers", "0")
    assert code == 2 and "--workers must be >= 1, got 0" in err


@pytest.mark.slow
def test_demo_runs_from_config(capsys, tmp_path):
    config = printed_config(capsys, tmp_path, "demo", "--out", tmp_path / "demo", "--workers", "1", "--quick")
    code, out, err = cause_pl(capsys, "demo", "--config", config)
    assert code == 0, err
    assert "The demo finished" in out and (tmp_path / "demo" / "animation.mp4").is_file()


def test_sweep_from_config_prints_the_same_runs_and_keeps_overrides(capsys, tmp_path):
    args = ["sweep", SHIPPED_SWEEP, "--count", "3", "--dry_run", "--out", tmp_path / "sweep"]
    code, from_flags, err = cause_pl(capsys, *args, "--", "--trainer.max_steps=5", "--data.init_args.root=x")
    assert code == 0, err
    commands = from_flags.splitlines()[1:]
    assert len(commands) == 3 and all(
        line.endswith("--trainer.max_steps=5 --data.init_args.root=x") for line in commands
    )
    config = printed_config(capsys, tmp_path, *args, "--", "--trainer.max_steps=5", "--data.init_args.root=x")
    assert yaml.safe_load(config.read_text())["overrides"] == ["--trainer.max_steps=5", "--data.init_args.root=x"]
    assert cause_pl(capsys, "sweep", "--config", config)[1] == from_flags
    replaced = cause_pl(capsys, "sweep", "--config", config, "--", "--trainer.max_steps=9")[1]
    assert all(line.endswith("--trainer.max_steps=9") for line in replaced.splitlines()[1:])


def test_old_dashed_flags_get_a_hint(capsys, tmp_path):
    code, _, err = cause_pl(capsys, "animate", "--cause-ckpt", tmp_path / "c.ckpt")
    assert code == 2 and "did you mean --cause_ckpt?" in err
    code, _, err = cause_pl(capsys, "sweep", SHIPPED_SWEEP, "--dry-run")
    assert code == 2 and "did you mean --dry_run?" in err
