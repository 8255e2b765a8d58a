"""``cause-pl export``: the files each kind of checkpoint makes, one stderr line per file, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning import LightningModule

from cause_pl.cli.command import EXIT_DATA, EXIT_OS
from cause_pl.cli.main import main
from cause_pl.export.cause import OFFLINE_FILE, STREAMING_FILE
from cause_pl.export.ganimation import GENERATOR_FILE
from cause_pl.export.onnx_file import METADATA_KEY, read_metadata
from cause_pl.export.runtime import onnx_session
from cause_pl.inference.estimate import estimate_aus
from tests.cli.test_main import run_main
from tests.export.test_cause import cause_model, speech_like
from tests.export.test_ganimation import small_ganimation


def save_checkpoint(model: LightningModule, path: Path) -> Path:
    """``model`` saved as a checkpoint of plain data, as Lightning would: weights, hyperparameters, extras."""
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def run_export(capsys, ckpt: Path, out: Path) -> tuple[int | str | None, list[str]]:
    """``cause-pl export`` in this process: its exit code and its stderr lines."""
    try:
        code: int | str | None = main(["export", "--ckpt", str(ckpt), "--out", str(out)])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_cause_checkpoint_makes_the_offline_and_the_streaming_file(tmp_path, capsys):
    model = cause_model("cnn")
    code, lines = run_export(capsys, save_checkpoint(model, tmp_path / "cnn.ckpt"), tmp_path / "onnx")
    assert code == 0
    written = sorted(path.name for path in (tmp_path / "onnx").iterdir())
    assert written == sorted([OFFLINE_FILE, STREAMING_FILE])
    assert len(lines) == 2 and all(line.endswith(" MB") for line in lines)
    assert {line.split(": ")[0] for line in lines} == {str(tmp_path / "onnx" / name) for name in written}
    wave = speech_like(7000)
    (aus,) = onnx_session(tmp_path / "onnx" / OFFLINE_FILE).run(["aus"], {"wave": wave.numpy()})
    assert float(np.abs(aus - estimate_aus(model, wave).numpy()).max()) < 1e-3


def test_an_rnn_checkpoint_makes_the_offline_file_and_says_why_not_the_streaming_one(tmp_path, capsys):
    code, lines = run_export(capsys, save_checkpoint(cause_model("rnn"), tmp_path / "rnn.ckpt"), tmp_path / "onnx")
    assert code == 0 and [path.name for path in (tmp_path / "onnx").iterdir()] == [OFFLINE_FILE]
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'onnx' / OFFLINE_FILE}: ")
    assert lines[1].startswith(f"{tmp_path / 'onnx' / STREAMING_FILE}: not written: ") and "unbounded" in lines[1]
    assert read_metadata(tmp_path / "onnx" / OFFLINE_FILE)[METADATA_KEY]["exporter"] == "torch.onnx (torchscript)"


def test_a_ganimation_checkpoint_makes_the_generator_file(tmp_path, capsys):
    code, lines = run_export(capsys, save_checkpoint(small_ganimation(), tmp_path / "gan.ckpt"), tmp_path / "onnx")
    assert code == 0 and [path.name for path in (tmp_path / "onnx").iterdir()] == [GENERATOR_FILE]
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'onnx' / GENERATOR_FILE}: ")
    info = read_metadata(tmp_path / "onnx" / GENERATOR_FILE)[METADATA_KEY]
    assert info["kind"] == "ganimation_generator" and info["exporter"] == "torch.onnx (dynamo)"


def test_a_text_file_as_checkpoint_is_one_line_and_exit_1(tmp_path, capfd):
    prose = tmp_path / "notes.ckpt"
    prose.write_text("not a checkpoint\n")
    code, out, err = run_main(capfd, ["export", "--ckpt", prose, "--out", tmp_path / "onnx"])
    assert code == EXIT_DATA and out == ""
    assert err.startswith(f"cause-pl export: {prose}: not loadable with weights_only=True")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.ckpt"]


@pytest.mark.parametrize(
    ("make", "code", "fragment"),
    [
        (lambda tmp: tmp / "missing.ckpt", EXIT_OS, "--ckpt: file not found"),
        (
            lambda tmp: save_any(tmp / "other.ckpt", {"state_dict": {"encoder.weight": torch.zeros(2)}}),
            EXIT_DATA,
            "unknown module's weights, expected a CAUSERegressor or GANimation checkpoint",
        ),
    ],
)
def test_bad_checkpoints_are_one_line(tmp_path, capsys, make, code, fragment):
    got, lines = run_export(capsys, make(tmp_path), tmp_path / "onnx")
    assert got == code and len(lines) == 1 and fragment in lines[0]
    assert not (tmp_path / "onnx").exists()


def test_a_file_in_place_of_the_out_folder_is_exit_3(tmp_path, capsys):
    ckpt = save_any(tmp_path / "other.ckpt", {"state_dict": {"encoder.weight": torch.zeros(2)}})
    (tmp_path / "taken").write_text("a file")
    got, lines = run_export(capsys, ckpt, tmp_path / "taken")
    assert got == EXIT_OS and lines == [f"cause-pl export: --out: not a folder: {tmp_path / 'taken'}"]


def save_any(path: Path, checkpoint: dict) -> Path:
    torch.save(checkpoint, path)
    return path
