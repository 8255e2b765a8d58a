"""The one error boundary of every command and recipe (``cli/command.py``, docs/design.md section 6).

Each hostile input ends in one line ``PROG: what went wrong (the file)`` on stderr, no traceback, a
documented exit code (1 bad input or data, 2 usage, 3 OS or disk) and no output left behind. Commands run
in this process (``main([...])``); subprocesses only for a closed stdout pipe and a recipe run as a script.
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
from tests.recipes.util import recipe_command, recipe_function

ROOT = Path(__file__).resolve().parents[2]
RANDOM_SWEEP = """name: random_lr
method: random
metric: {name: val/mae, goal: minimize}
parameters:
  model.init_args.lr: {distribution: log_uniform_values, min: 0.0001, max: 0.01}
command: [cause-pl, fit, "${args}"]
"""


def hostile_inputs(work: Path) -> dict[str, Path]:
    """Files a user may hand a command by mistake, written into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    paths = {
        "text_ckpt": work / "notes.ckpt",  # a pickle stream that breaks torch's unpickler (IndexError inside)
        "prose_ckpt": work / "prose.ckpt",  # one weights_only=True refuses outright
        "garbage_wav": work / "garbage.wav",
        "empty_wav": work / "empty.wav",
        "text_face": work / "face.txt",
        "plain_file": work / "plain_file",
        "no_index": work / "no_index",
        "bad_sweep": work / "bad_sweep.yaml",
        "random_sweep": work / "random_sweep.yaml",
        "partition": work / "list_eval_partition.txt",
    }
    paths["text_ckpt"].write_text("text\n")
    paths["prose_ckpt"].write_text("not a checkpoint\n")
    paths["garbage_wav"].write_bytes(b"RIFF garbage, not a wave file")
    paths["empty_wav"].write_bytes(b"")
    paths["text_face"].write_text("not an image")
    paths["plain_file"].write_text("a file where a folder is expected")
    paths["no_index"].mkdir()
    paths["bad_sweep"].write_text(RANDOM_SWEEP.replace("method: random", "method: bogus"))
    paths["random_sweep"].write_text(RANDOM_SWEEP)
    paths["partition"].write_text("000001.jpg 0\n000002.jpg train\n")
    return paths


def case_table(files: dict[str, Path], bad: dict[str, Path], work: Path) -> dict[str, tuple[list, int, list]]:
    """Case id -> (argv, exit code, fragments the one line must contain)."""
    speech, face = files["speech"], files["face"]
    cause, ganimation = files["cause_checkpoint"], files["ganimation_checkpoint"]
    speech_shards, face_shards = files["data"] / "speech_au", files["data"] / "faces"
    estimate = ["estimate", speech, "--out", work / "aus.csv"]
    animate = ["animate", "--audio", speech, "--face", face, "--cause_ckpt", cause, "--ganimation_ckpt", ganimation]
    animate_out = ["--out", work / "out.mp4"]
    table1 = ["table1", "--out", work / "t1"]
    return {
        "estimate-missing-ckpt": ([*estimate, "--ckpt", work / "missing.ckpt"], EXIT_OS, ["file not found", "missing"]),
        "estimate-dir-as-ckpt": ([*estimate, "--ckpt", work], EXIT_OS, ["is a directory", str(work)]),
        "estimate-text-ckpt": ([*estimate, "--ckpt", bad["text_ckpt"]], EXIT_DATA, ["not a PyTorch checkpoint"]),
        "estimate-prose-ckpt": ([*estimate, "--ckpt", bad["prose_ckpt"]], EXIT_DATA, ["not loadable", "prose.ckpt"]),
        "estimate-ganimation-ckpt": (
            [*estimate, "--ckpt", ganimation],
            EXIT_DATA,
            ["expected a CAUSERegressor checkpoint", ganimation],
        ),
        "estimate-undecodable-audio": (
            ["estimate", bad["garbage_wav"], "--ckpt", cause, "--out", work / "aus.csv"],
            EXIT_DATA,
            ["not decodable as audio", "garbage.wav"],
        ),
        "estimate-empty-audio": (
            ["estimate", bad["empty_wav"], "--ckpt", cause, "--out", work / "aus.csv"],
            EXIT_DATA,
            ["empty file", "empty.wav"],
        ),
        "estimate-missing-audio": (
            ["estimate", work / "missing.wav", "--ckpt", cause, "--out", work / "aus.csv"],
            EXIT_OS,
            ["file not found", "missing.wav"],
        ),
        "estimate-out-under-a-file": (
            ["estimate", speech, "--ckpt", cause, "--out", bad["plain_file"] / "sub" / "aus.csv"],
            EXIT_OS,
            ["Not a directory", "plain_file"],
        ),
        "estimate-device-banana": ([*estimate, "--ckpt", cause, "--device", "banana"], EXIT_USAGE, ["banana"]),
        "animate-face-not-image": (
            ["animate", "--audio", speech, "--face", bad["text_face"], *animate[5:], *animate_out],
            EXIT_DATA,
            ["not a readable image", "face.txt"],
        ),
        "animate-swapped-ckpts": (
            [*animate[:5], "--cause_ckpt", ganimation, "--ganimation_ckpt", cause, *animate_out],
            EXIT_DATA,
            ["expected a CAUSERegressor checkpoint", ganimation],
        ),
        "animate-missing-audio": (
            ["animate", "--audio", work / "missing.wav", *animate[3:], *animate_out],
            EXIT_OS,
            ["--audio: file not found", "missing.wav"],
        ),
        "animate-out-under-a-file": (
            [*animate, "--out", bad["plain_file"] / "out.mp4"],
            EXIT_OS,
            ["a file is in the way of a folder", "plain_file"],
        ),
        "table1-no-index": (
            [*table1, "--shards", bad["no_index"], "--ckpt", cause],
            EXIT_DATA,
            ["no index.json", "no_index"],
        ),
        "table1-face-shards": ([*table1, "--shards", face_shards, "--ckpt", cause], EXIT_DATA, ["'faces' shards"]),
        "table1-one-ckpt-missing": (
            [*table1, "--shards", speech_shards, "--ckpt", cause, work / "gone.ckpt"],
            EXIT_OS,
            ["--ckpt: file not found", "gone.ckpt"],
        ),
        "ganimation-eval-cause-ckpt": (
            ["ganimation-eval", "--shards", face_shards, "--ckpt", cause, "--out", work / "s.json"],
            EXIT_DATA,
            ["expected a GANimation checkpoint", cause],
        ),
        "ganimation-eval-no-index": (
            ["ganimation-eval", "--shards", bad["no_index"], "--ckpt", ganimation, "--out", work / "s.json"],
            EXIT_DATA,
            ["no index.json", "no_index"],
        ),
        "sweep-bad-method": (["sweep", bad["bad_sweep"], "--dry_run"], EXIT_DATA, ["method 'bogus'", "bad_sweep"]),
        "sweep-missing-file": (["sweep", work / "nope.yaml", "--dry_run"], EXIT_OS, ["file not found", "nope.yaml"]),
        "sweep-random-without-count": (["sweep", bad["random_sweep"], "--dry_run"], EXIT_USAGE, ["--count"]),
        "demo-out-under-a-file": (["demo", "--out", bad["plain_file"] / "demo"], EXIT_OS, ["plain_file"]),
    }


CASES = [
    "estimate-missing-ckpt",
    "estimate-dir-as-ckpt",
    "estimate-text-ckpt",
    "estimate-prose-ckpt",
    "estimate-ganimation-ckpt",
    "estimate-undecodable-audio",
    "estimate-empty-audio",
    "estimate-missing-audio",
    "estimate-out-under-a-file",
    "estimate-device-banana",
    "animate-face-not-image",
    "animate-swapped-ckpts",
    "animate-missing-audio",
    "animate-out-under-a-file",
    "table1-no-index",
    "table1-face-shards",
    "table1-one-ckpt-missing",
    "ganimation-eval-cause-ckpt",
    "ganimation-eval-no-index",
    "sweep-bad-method",
    "sweep-missing-file",
    "sweep-random-without-count",
    "demo-out-under-a-file",
]


def run_main(capsys, argv: list) -> tuple[int, str, str]:
    """``cause-pl ARGV`` in this process: exit code, stdout, stderr."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def assert_one_line(err: str, prog: str, fragments: list) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), err[-3000:]
    assert "Traceback" not in err
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_one_line_and_an_exit_code(case, quick_demo, tmp_path, capsys):
    work = tmp_path / "work"
    bad = hostile_inputs(work)
    argv, expected_code, fragments = case_table(quick_demo.files, bad, work)[case]
    before = files_under(work)
    code, _, err = run_main(capsys, argv)
    assert code == expected_code, err[-3000:]
    assert_one_line(err, f"cause-pl {argv[0]}", fragments)
    assert files_under(work) == before  # no output, partial file or folder left behind


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

    bad = hostile_inputs(tmp_path / "work")
    cases = [
        ("celeba", ["--images", tmp_path, "--partition", bad["partition"]], EXIT_DATA, ["partition.txt:2"]),
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
