"""``cause_pl.cli.command``: a typed, documented function run as a command line (in this process)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
import yaml

from cause_pl.cli.command import UsageError, run_as_command
from cause_pl.features.mel import MelConfig

FRONTEND = MelConfig()
calls: list[dict] = []


def toy(
    audio: Path,
    *,
    cause_ckpt: Path,
    ckpt: list[Path],
    split: Literal["val", "test"] = "val",
    quick: bool = False,
    overrides: list[str] | None = None,
    frontend: MelConfig = FRONTEND,
) -> int:
    """Record the call.

    A second paragraph for --help.

    Args:
        audio: the speech file
        cause_ckpt: the CAUSE checkpoint
        ckpt: checkpoints, one or more
        split: the split to read
        quick: take shortcuts
        overrides: extra arguments
        frontend: the mel frontend
    """
    if audio.name == "refused.wav":
        raise UsageError(f"cannot use {audio}")
    calls.append(
        {"audio": audio, "cause_ckpt": cause_ckpt, "ckpt": ckpt, "split": split, "quick": quick}
        | {"overrides": overrides, "frontend": frontend}
    )
    return 7


REQUIRED = ["a.wav", "--cause_ckpt", "c.ckpt", "--ckpt", "x.ckpt"]


def run(*args: str | Path) -> int:
    return run_as_command(toy, [str(arg) for arg in args], prog="toy")


def exit_code(capsys, *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        run(*args)
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


def test_help_is_the_docstring(capsys):
    code, out, _ = exit_code(capsys, "--help")
    assert code == 0
    assert "usage: toy" in out and "Record the call. A second paragraph for --help." in out
    for text in ("the speech file", "the CAUSE checkpoint", "checkpoints, one or more", "take shortcuts"):
        assert text in out
    assert "--cause_ckpt" in out and "--frontend.sample_rate" in out and "--config" in out


def test_signature_becomes_positionals_flags_lists_and_groups():
    calls.clear()
    assert run(*REQUIRED[:-1], "x.ckpt", "y.ckpt", "--quick", "--split", "test", "--frontend.n_mels", "40") == 7
    assert run(*REQUIRED, "--quick=false", "--overrides+=--a=1", "--overrides+=--b=2") == 7
    first, second = calls
    assert first["audio"] == Path("a.wav") and first["ckpt"] == [Path("x.ckpt"), Path("y.ckpt")]
    assert first["quick"] is True and first["split"] == "test"
    assert first["frontend"] == MelConfig(n_mels=40) and first["overrides"] is None
    assert second["quick"] is False and second["overrides"] == ["--a=1", "--b=2"]
    assert second["frontend"] == FRONTEND


def test_printed_config_reproduces_the_call(capsys, tmp_path):
    calls.clear()
    args = [*REQUIRED, "y.ckpt", "--quick", "--frontend.fps", "50", "--overrides", '["--x=1"]']
    code, printed, _ = exit_code(capsys, *args, "--print_config")
    assert code == 0
    config = yaml.safe_load(printed)
    assert config["ckpt"] == ["x.ckpt", "y.ckpt"] and config["frontend"]["fps"] == 50 and config["quick"] is True
    path = tmp_path / "toy.yaml"
    path.write_text(printed)
    assert exit_code(capsys, "--config", path, "--print_config")[1] == printed
    run(*args)
    run("--config", path)
    assert calls[0] == calls[1]
    run("--config", path, "--split", "test")  # flags after --config win
    assert calls[2]["split"] == "test"


def test_dashed_flags_get_a_hint(capsys):
    code, _, err = exit_code(capsys, "a.wav", "--cause-ckpt", "c.ckpt", "--ckpt", "x.ckpt")
    assert code == 2 and "did you mean --cause_ckpt?" in err
    code, _, err = exit_code(capsys, *REQUIRED, "--frontend.sample-rate=8000")
    assert code == 2 and "did you mean --frontend.sample_rate?" in err
    code, _, err = exit_code(capsys, *REQUIRED, "--no-such-flag")
    assert code == 2 and "did you mean" not in err


def test_bad_values_are_usage_errors(capsys):
    code, _, err = exit_code(capsys, "refused.wav", *REQUIRED[1:])
    assert code == 2 and err == "toy: cannot use refused.wav\n"  # a UsageError of the command: one line
    code, _, err = exit_code(capsys, *REQUIRED, "--frontend.fps", "7")
    assert code == 2 and "must be a multiple of fps" in err and "Traceback" not in err
    code, _, err = exit_code(capsys, *REQUIRED, "--split", "train")
    assert code == 2 and "split" in err


def test_a_dataloader_workers_error_is_its_own_message():
    """torch re-raises a worker's exception with the worker's traceback as its message: keep the last line."""
    from torch._utils import ExceptionWrapper

    from cause_pl.cli.command import error_line
    from cause_pl.shards.schema import ShardError

    try:
        raise ShardError("/data/speech_au-train-000009.tar: unreadable: FileNotFoundError")
    except ShardError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(ShardError) as reraised:
        wrapped.reraise()
    assert "Traceback" in str(reraised.value)
    assert error_line(reraised.value) == "/data/speech_au-train-000009.tar: unreadable: FileNotFoundError"
