"""The error boundary itself (``cli/command.py``, docs/design.md section 6), beyond the tables of cases.

OS errors while writing (a full disk, a refused write), LightningCLI's parser message, recipes run in
this process, ``--out -`` into a closed pipe and a recipe's own name as a user sees them (subprocesses),
``--debug`` showing the traceback, and a genuine bug keeping its traceback.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from jsonargparse import ArgumentError

from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from cause_pl.cli.main import main
from cause_pl.media.audio import AudioError
from tests.hostile.harness import assert_one_line, run_main
from tests.recipes.util import recipe_command, recipe_function

ROOT = Path(__file__).resolve().parents[2]


def test_os_errors_while_writing_name_the_file(quick_demo, tmp_path, capsys, monkeypatch):
    """A full disk and a refused write (simulated: the tests may run as root) are exit 3 with the file."""
    import cause_pl.cli.estimate as estimate_module

    out = tmp_path / "aus.csv"
    argv = ["estimate", quick_demo.files["speech"], "--ckpt", quick_demo.files["cause_checkpoint"], "--out", out]
    for error, fragment in (
        (OSError(errno.ENOSPC, "No space left on device", str(out)), "No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", str(out)), "Permission denied"),
    ):

        def refuse(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(estimate_module, "write_openface_style_csv", refuse)
        code, _, err = run_main(capsys, argv)
        assert code == EXIT_OS
        assert_one_line(err, "cause-pl estimate", [fragment, out])
    assert not out.exists()


def test_lightning_cli_errors_are_the_parser_message(capsys):
    base = ["fit", "--config", ROOT / "experiments/cause/voxceleb2.yaml"]
    code, _, err = run_main(capsys, [*base, "--model.init_args.lrr=0.1"])
    lines = err.splitlines()
    assert code == EXIT_USAGE and lines[0].startswith("cause-pl fit: ") and 1 < len(lines) <= 14, err[-3000:]
    assert "Option 'lrr' is not accepted" in err and "Traceback" not in err
    code, _, err = run_main(capsys, [*base, "--config", "no/such/config.yaml"])
    assert code == EXIT_USAGE and err.splitlines()[0].startswith("cause-pl fit: ")
    assert "no/such/config.yaml" in err.splitlines()[0] and "Traceback" not in err
    with pytest.raises(ArgumentError):  # --debug: the exception itself, so its traceback
        main([str(arg) for arg in [*base, "--model.init_args.lrr=0.1", "--debug"]])


def test_recipes_in_process(tmp_path, capsys):
    from cause_pl.cli.command import run_as_command

    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg train\n")
    cases = [
        ("celeba", ["--images", tmp_path, "--partition", partition], EXIT_DATA, ["partition.txt:2"]),
        ("celeba", ["--images", tmp_path, "--partition", tmp_path / "gone.txt"], EXIT_OS, ["gone.txt"]),
        ("synthetic", ["--speakers", "2"], EXIT_USAGE, ["speakers must be >= 3"]),
    ]
    for name, args, expected_code, fragments in cases:
        common = ["--openface", tmp_path, "--out", tmp_path / "out"] if name == "celeba" else ["--out", tmp_path / "s"]
        with pytest.raises(SystemExit) as exited:
            run_as_command(recipe_function(name), [str(arg) for arg in [*args, *common]], prog=f"{name}.py")
        assert exited.value.code == expected_code, name
        assert_one_line(capsys.readouterr().err, f"{name}.py", fragments)
    assert not (tmp_path / "out").exists() and not (tmp_path / "s").exists()


def test_closed_pipe_and_recipe_script_in_subprocesses(quick_demo, tmp_path):
    """``--out -`` into a reader that is gone, and a recipe's own prog name, as a user sees them."""
    estimate = [sys.executable, "-m", "cause_pl.cli.main", "estimate", str(quick_demo.files["speech"])]
    estimate += ["--ckpt", str(quick_demo.files["cause_checkpoint"]), "--out", "-"]
    pipe = subprocess.Popen(estimate, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pipe.stdout.close()  # the reader is gone before the first row is written
    recipe = subprocess.Popen(
        recipe_command("voxceleb2", "--media", tmp_path / "media", "--openface", tmp_path, "--out", tmp_path / "o"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pipe_err = pipe.stderr.read()
    assert pipe.wait(timeout=120) == EXIT_OS
    assert_one_line(pipe_err, "cause-pl estimate", ["broken pipe", "stdout"])
    assert "Exception ignored" not in pipe_err
    _, recipe_err = recipe.communicate(timeout=120)
    assert recipe.returncode == EXIT_OS
    assert_one_line(recipe_err, "voxceleb2.py", ["--media: no such folder", tmp_path / "media"])
    assert not (tmp_path / "o").exists()


def test_debug_shows_the_traceback(quick_demo, tmp_path, capsys):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF garbage")
    argv = ["estimate", garbage, "--ckpt", quick_demo.files["cause_checkpoint"], "--out", tmp_path / "a.csv"]
    with pytest.raises(AudioError, match=r"garbage\.wav"):
        main([str(arg) for arg in [*argv, "--debug"]])
    assert run_main(capsys, argv)[0] == EXIT_DATA  # the same without --debug: one line


def test_a_genuine_bug_keeps_its_traceback(quick_demo, tmp_path, monkeypatch):
    import cause_pl.cli.estimate as estimate_module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the library")

    monkeypatch.setattr(estimate_module, "estimate_file", broken)
    argv = ["estimate", quick_demo.files["speech"], "--ckpt", quick_demo.files["cause_checkpoint"]]
    with pytest.raises(RuntimeError, match="a bug in the library"):
        main([str(arg) for arg in [*argv, "--out", tmp_path / "a.csv"]])
