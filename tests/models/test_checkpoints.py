"""``models/checkpoints.py``: refused pickles in one short line, and checkpoints that do not fit the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.models.checkpoints import read_checkpoint


class Unsafe:
    """A class of our own: pickled by reference, so ``weights_only=True`` refuses to import it."""


def write_unsafe_checkpoint(path: Path) -> Path:
    """A checkpoint that holds an object of a class ``torch.load(weights_only=True)`` does not allow."""
    torch.save({"state_dict": {}, "x": Unsafe()}, path)
    return path


def cause_checkpoint(trained: str, **hparams: str) -> dict:
    """A checkpoint dict of a fresh CAUSE net of arch ``trained``, its hyperparameters changed by ``hparams``."""
    model = CAUSERegressor(arch=trained)
    return {"state_dict": model.state_dict(), "hyper_parameters": {**model.hparams, **hparams}}


def test_a_refused_pickle_is_one_short_line_naming_the_global(tmp_path):
    path = write_unsafe_checkpoint(tmp_path / "unsafe.ckpt")
    with pytest.raises(ValueError, match="not loadable") as refused:
        read_checkpoint(path)
    assert str(refused.value) == (
        f"{path}: not loadable with weights_only=True (it holds {__name__}.Unsafe); "
        "only plain tensors and containers are accepted"
    )
    prose = tmp_path / "prose.ckpt"
    prose.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not loadable with weights_only=True") as refused:
        read_checkpoint(prose)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < len(str(prose)) + 160


def test_a_checkpoint_of_another_architecture_is_refused_before_its_weights():
    with pytest.raises(ValueError, match="trained as arch='cnn', this config builds arch='mlp'"):
        CAUSERegressor(arch="mlp").on_load_checkpoint(cause_checkpoint("cnn"))
    with pytest.raises(ValueError, match=r"do not fit the net built with arch='mlp': \d+ missing .*unexpected"):
        CAUSERegressor(arch="mlp").on_load_checkpoint(cause_checkpoint("cnn", arch="mlp"))
    CAUSERegressor(arch="cnn").on_load_checkpoint(cause_checkpoint("cnn"))


def test_the_loader_names_the_file_whose_weights_do_not_fit(tmp_path):
    path = tmp_path / "relabelled.ckpt"
    torch.save(cause_checkpoint("rnn", arch="mlp"), path)
    with pytest.raises(ValueError, match=rf"^{path}: CAUSERegressor: the checkpoint's weights do not fit"):
        load_cause_checkpoint(path)
