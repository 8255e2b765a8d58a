"""SampleGridCallback on a tiny GANimation trained two short epochs over real synthetic face shards."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, Logger

from cause_pl.au import NUM_AUS
from cause_pl.callbacks.sample_grid import (
    DEFAULT_TARGETS,
    GRID_DIRNAME,
    GRID_PAD,
    ROWS_PER_FACE,
    SampleGridCallback,
    to_uint8_image,
)
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.evaluation.ganimation import FaceAURegressor
from cause_pl.models.ganimation import GANimation
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_face_corpus
from tests.builders.loggers import RecordingLogger

pytestmark = pytest.mark.filterwarnings("ignore:The '(train|val)_dataloader' does not have many workers")

SIZE = 32
NUM_FACES = 2
SPEC = SyntheticCorpusSpec(faces=60, identities=10, face_size=SIZE, face_shard_size=4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("face_shards")
    write_face_corpus(out, SPEC)
    return out


def datamodule(corpus: Path) -> FaceAUDataModule:
    return FaceAUDataModule(str(corpus), batch_size=4, image_size=SIZE, num_workers=0, shuffle_buffer=8)


def fit(corpus: Path, log_root: Path, callback: SampleGridCallback, logger: Logger | None = None) -> Path:
    """Two epochs of one batch (one critic and one generator step each), validating on one batch
    after each; returns the run directory (a CSVLogger's by default)."""
    torch.manual_seed(0)
    model = GANimation(
        image_size=SIZE, g_base_channels=8, g_res_blocks=1, d_base_channels=8, d_layers=4, critic_steps=1
    )
    logger = logger or CSVLogger(str(log_root))
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=logger,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[callback],
    )
    trainer.fit(model, datamodule=datamodule(corpus))
    return Path(trainer.log_dir)


def first_val_batch(corpus: Path) -> dict:
    dm = datamodule(corpus)
    dm.setup("fit")
    return next(iter(dm.val_dataloader()))


def tile(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    top, left = GRID_PAD + row * (SIZE + GRID_PAD), GRID_PAD + col * (SIZE + GRID_PAD)
    return grid[top : top + SIZE, left : left + SIZE]


def test_grid_files_layout_and_fixed_faces(corpus, tmp_path):
    callback = SampleGridCallback(num_faces=NUM_FACES)
    run_dir = fit(corpus, tmp_path, callback)

    batch = first_val_batch(corpus)
    assert callback.faces is not None
    assert callback.faces.keys == [str(key) for key in batch["keys"][:NUM_FACES]]
    torch.testing.assert_close(callback.faces.images, batch["image"][:NUM_FACES].float())

    rows, cols = ROWS_PER_FACE * NUM_FACES, 1 + len(DEFAULT_TARGETS)
    for epoch in (0, 1):
        path = run_dir / GRID_DIRNAME / f"epoch{epoch:03d}.png"
        assert path.is_file(), f"missing {path}"
        grid = np.asarray(Image.open(path))
        assert grid.dtype == np.uint8
        assert grid.shape == (rows * SIZE + (rows + 1) * GRID_PAD, cols * SIZE + (cols + 1) * GRID_PAD, 3)
        for face in range(NUM_FACES):
            expected = to_uint8_image(batch["image"][face])
            np.testing.assert_array_equal(tile(grid, ROWS_PER_FACE * face, 0), expected)
            # column 0 below the input is blank; attention tiles are grey (R == G == B)
            assert (tile(grid, ROWS_PER_FACE * face + 1, 0) == 255).all()
            attention = tile(grid, ROWS_PER_FACE * face + 1, 1)
            assert (attention[..., 0] == attention[..., 1]).all() and (attention[..., 1] == attention[..., 2]).all()
    # the generator trained in between, so the edits (not the inputs) differ across epochs
    first, second = (np.asarray(Image.open(run_dir / GRID_DIRNAME / f"epoch{e:03d}.png")) for e in (0, 1))
    assert not np.array_equal(tile(first, 0, 1), tile(second, 0, 1))
    assert "val/au_error" not in (run_dir / "metrics.csv").read_text()  # no reader, no scores


def test_au_reader_metrics_reach_the_logger(corpus, tmp_path):
    reader = FaceAURegressor(base_channels=4, num_down=2).eval().requires_grad_(False)
    callback = SampleGridCallback(num_faces=NUM_FACES, target_aus=[[0.0] * NUM_AUS, [0.5] * NUM_AUS], au_reader=reader)
    run_dir = fit(corpus, tmp_path, callback)

    with open(run_dir / "metrics.csv", newline="") as handle:
        logged = [row for row in csv.DictReader(handle) if row.get("val/au_error")]
    assert [int(row["epoch"]) for row in logged] == [0, 1]
    for row in logged:
        assert float(row["val/au_error"]) >= 0
        assert 0 <= float(row["val/identity"]) <= 1
    grid = np.asarray(Image.open(run_dir / GRID_DIRNAME / "epoch001.png"))
    assert grid.shape[1] == 3 * SIZE + 4 * GRID_PAD  # input + two targets


def test_summary_writer_gets_the_grid_every_n_epochs(corpus, tmp_path):
    logger = RecordingLogger(tmp_path)
    run_dir = fit(corpus, tmp_path, SampleGridCallback(num_faces=NUM_FACES, every_n_epochs=2), logger)
    assert [(tag, step, fmt) for tag, _, step, fmt in logger.writer.images] == [("val/sample_grid", 4, "HWC")]
    assert sorted(path.name for path in (run_dir / GRID_DIRNAME).iterdir()) == ["epoch001.png"]
    np.testing.assert_array_equal(
        logger.writer.images[0][1], np.asarray(Image.open(run_dir / GRID_DIRNAME / "epoch001.png"))
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"num_faces": 0}, {"every_n_epochs": 0}, {"target_aus": [[0.0] * 3]}, {"target_aus": []}, {"au_reader": 3}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises((ValueError, TypeError), match="SampleGridCallback"):
        SampleGridCallback(**kwargs)
