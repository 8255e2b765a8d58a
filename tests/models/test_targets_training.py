"""CAUSE on other targets than the 17 AUs: 12 DISFA AUs and 8 FERPlus emotion distributions.

The model takes the targets from the shards' index.json, trains with the loss that fits them, and
everything downstream follows their names and size: metrics and their log keys, the AU report's
figures, Table 1, checkpoints, inference.
"""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from cause_pl.callbacks.au_report import AUReportCallback
from cause_pl.data import SpeechAUDataModule
from cause_pl.evaluation.table1 import evaluate_on_shards
from cause_pl.inference.estimate import estimate_aus
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from cause_pl.synthetic.speech import synth_utterance
from cause_pl.targets import PRESETS


@pytest.fixture(scope="module", params=["disfa", "emotions"])
def shards(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "speech_au"
    spec = SyntheticCorpusSpec(speakers=6, utterances_per_speaker=5, shard_size=4, max_seconds=3, targets=request.param)
    return write_speech_corpus(root, spec)


def fit(root, tmp_path, model: CAUSERegressor) -> pl.Trainer:
    data = SpeechAUDataModule(str(root), batch_size=4, crop_frames=64, num_workers=0, train_samples_per_epoch=24)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[AUReportCallback(num_tracks=1)],
    )
    trainer.fit(model, datamodule=data)
    return trainer


def test_the_model_follows_the_targets_of_its_data(shards, tmp_path):
    spec = shards.targets
    assert spec == PRESETS[spec.name]
    pl.seed_everything(0)
    model = CAUSERegressor(arch="cnn", lr=3e-3)
    trainer = fit(shards.root, tmp_path, model)
    assert model.targets == spec and model.net.out_dim == spec.size and model.au_mean.shape == (spec.size,)
    metrics = trainer.callback_metrics
    assert all(torch.isfinite(metrics[key]) for key in ("val/mae", "val/zero/mae", "val/mean/mae", "val/ccc"))
    assert f"val/{spec.labels[-1]}/mae" in trainer.callback_metrics  # per-target keys carry their names
    report_files = sorted(path.name for path in (tmp_path / "lightning_logs").rglob("*.png"))
    assert any("tracks" in name for name in report_files), report_files

    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    loaded = load_cause_checkpoint(checkpoint)
    assert loaded.targets == spec
    wave = torch.from_numpy(synth_utterance(0, 0, max_seconds=2.0).wave)
    aus = estimate_aus(loaded, wave).numpy()
    assert aus.shape == (loaded.frontend_config.num_frames(len(wave)), spec.size)
    if spec.kind == "distribution":
        np.testing.assert_allclose(aus.sum(axis=1), 1.0, atol=1e-5)
    else:
        assert aus.min() >= spec.low and aus.max() <= spec.high
    report = evaluate_on_shards(loaded, shards.root, "test")
    assert list(report.labels) == list(spec.labels)


def test_a_model_given_other_targets_refuses_the_data(shards, tmp_path):
    other = "fera" if shards.targets.name != "fera" else "disfa"
    with pytest.raises(ValueError, match=rf"the datamodule has targets '{shards.targets.name}'.*regresses '{other}'"):
        fit(shards.root, tmp_path, CAUSERegressor(arch="mlp", targets=PRESETS[other].to_dict()))
