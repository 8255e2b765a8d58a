"""CAUSERegressor: masked loss, training, metrics, normalisation/frontend in checkpoints, predict."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from cause_pl.au import NUM_AUS
from cause_pl.features.mel import MelConfig, MelFrontend
from cause_pl.inference.estimate import estimate_aus
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.nets.outputs import masked_l1
from cause_pl.synthetic.speech import synth_utterance

SMALL_FRONTEND = MelConfig(n_mels=64, f_max=7600.0)


# --- an in-memory stand-in for the speech datamodule (same batch contract) ----------------------


def make_utterances(
    speakers: range, per_speaker: int, config: MelConfig, seconds: tuple[float, float], seed: int = 0
) -> list[dict]:
    """Synthetic utterances with their raw log-mel computed by the project's frontend."""
    frontend = MelFrontend(config)
    utterances = []
    for speaker in speakers:
        for index in range(per_speaker):
            u = synth_utterance(speaker, index, seed=seed, min_seconds=seconds[0], max_seconds=seconds[1])
            with torch.no_grad():
                mel = frontend(torch.from_numpy(u.wave))
            utterances.append(
                {
                    "key": u.key,
                    "wave": torch.from_numpy(u.wave),
                    "mel": mel,
                    "au": torch.from_numpy(u.aus),
                    "valid": torch.from_numpy(u.valid),
                }
            )
    return utterances


def collate(utterances: list[dict]) -> dict:
    """Pad to the longest utterance; padding is zero and masked out (the datamodule's contract)."""
    frames = max(len(u["mel"]) for u in utterances)
    batch = len(utterances)
    n_mels = utterances[0]["mel"].shape[1]
    mel, au = torch.zeros(batch, frames, n_mels), torch.zeros(batch, frames, NUM_AUS)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for row, u in enumerate(utterances):
        length = len(u["mel"])
        mel[row, :length], au[row, :length], mask[row, :length] = u["mel"], u["au"], u["valid"]
    lengths = torch.tensor([len(u["mel"]) for u in utterances], dtype=torch.int64)
    return {"mel": mel, "au": au, "mask": mask, "lengths": lengths, "keys": [u["key"] for u in utterances]}


class InMemoryAUData(pl.LightningDataModule):
    """Training statistics computed over the training utterances, as the shard index stores them."""

    def __init__(self, train: list[dict], val: list[dict], config: MelConfig, batch_size: int = 4) -> None:
        super().__init__()
        self.train, self.val, self.config, self.batch_size = train, val, config, batch_size
        mel = torch.cat([u["mel"] for u in train]).double()
        au = torch.cat([u["au"][u["valid"]] for u in train]).double()
        self._stats = (mel.mean(0).float(), mel.std(0, unbiased=False).float(), au.mean(0).float())

    frontend_config = property(lambda self: self.config)
    mel_mean = property(lambda self: self._stats[0])
    mel_std = property(lambda self: self._stats[1])
    au_mean = property(lambda self: self._stats[2])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train,
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(0),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=1, collate_fn=collate)

    test_dataloader = val_dataloader


def cpu_trainer(**options) -> pl.Trainer:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return pl.Trainer(**(defaults | options))


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    config = SMALL_FRONTEND
    return {
        "train": make_utterances(range(3), 4, config, (1.0, 2.0)),
        "val": make_utterances(range(3, 4), 3, config, (1.0, 2.0)),
    }


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> dict:
    """A DCNN fitted for 2 epochs with plateau scheduling and ModelCheckpoint on val/mae."""
    folder = tmp_path_factory.mktemp("checkpoints")
    data = InMemoryAUData(corpus["train"], corpus["val"], SMALL_FRONTEND)
    model = CAUSERegressor(arch="dcnn", lr=3e-3, scheduler="plateau")
    checkpoint = ModelCheckpoint(dirpath=folder, monitor="val/mae", mode="min", save_top_k=1)
    latest = ModelCheckpoint(dirpath=folder, filename="latest-{epoch}-{step}", save_last="link")
    trainer = cpu_trainer(max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint, latest])
    trainer.fit(model, datamodule=data)
    return {
        "model": model.eval(),
        "data": data,
        "checkpoint": checkpoint,
        "latest": latest,
        "steps": trainer.global_step,
    }


# --- loss -----------------------------------------------------------------------------------------


def test_masked_l1_equals_hand_computation_and_ignores_invalid_frames():
    generator = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 6, 4, generator=generator, requires_grad=True)
    target = 5 * torch.rand(3, 6, 4, generator=generator)
    mask = torch.rand(3, 6, generator=generator) > 0.4
    mask[0, 0] = True
    total, count = 0.0, 0
    for b in range(3):
        for t in range(6):
            if mask[b, t]:
                total += sum(abs(target[b, t, k].item() - pred[b, t, k].item()) for k in range(4))
                count += 4
    loss = masked_l1(pred, target, mask)
    assert loss.item() == pytest.approx(total / count, rel=1e-6)

    changed_target = target.clone()
    changed_target[~mask] = float("nan")
    changed_pred = pred.detach().clone()
    changed_pred[~mask] = 1e6
    changed_pred.requires_grad_(True)
    changed = masked_l1(changed_pred, changed_target, mask)
    assert changed.item() == loss.item()
    changed.backward()
    assert torch.isfinite(changed_pred.grad).all() and (changed_pred.grad[~mask] == 0).all()


def test_masked_l1_without_valid_frames_is_zero():
    pred = torch.randn(2, 3, NUM_AUS, requires_grad=True)
    loss = masked_l1(pred, torch.full((2, 3, NUM_AUS), float("nan")), torch.zeros(2, 3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and (pred.grad == 0).all()


# --- training and validation ------------------------------------------------------------------------


class LearningRates(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.values.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_fit_copies_stats_reduces_loss_and_logs_metrics_with_baselines(corpus):
    data = InMemoryAUData(corpus["train"], corpus["val"], SMALL_FRONTEND)
    model = CAUSERegressor(arch="cnn", lr=5e-3, warmup_steps=5, log_per_au=False)
    assert model.net.in_dim == 80 and not model.has_stats
    before = cpu_trainer().validate(model, datamodule=data, verbose=False)[0]
    # The first setup adopted the data's 64-band frontend and its statistics.
    assert model.has_stats and model.net.in_dim == 64 and model.frontend_config == SMALL_FRONTEND
    torch.testing.assert_close(model.mel_mean, data.mel_mean, rtol=0, atol=0)
    torch.testing.assert_close(model.au_mean, data.au_mean, rtol=0, atol=0)

    rates = LearningRates()
    trainer = cpu_trainer(max_steps=90, callbacks=[rates])
    trainer.fit(model, datamodule=data)
    assert "train/loss" in trainer.callback_metrics
    after = trainer.validate(model, datamodule=data, verbose=False)[0]
    assert after["val/loss"] < 0.7 * before["val/loss"]

    peak = rates.values.index(max(rates.values))
    assert peak == 4 and max(rates.values) == pytest.approx(5e-3)  # linear warmup over 5 steps
    assert np.all(np.diff(rates.values[:5]) > 0) and np.all(np.diff(rates.values[5:]) < 0)
    assert rates.values[-1] < 0.01 * 5e-3  # cosine decays to ~0 at max_steps

    for key in (
        "val/mae",
        "val/mse",
        "val/pcc",
        "val/ccc",
        "val/mae_ci_low",
        "val/mae_ci_high",
        "val/zero/mae",
        "val/mean/mae",
        "val/zero/mse",
        "val/mean/ccc",
    ):
        assert key in after and math.isfinite(after[key]), key
    assert after["val/mae_ci_low"] < after["val/mae"] < after["val/mae_ci_high"]
    assert not any("/AU" in key for key in after)

    valid_targets = torch.cat([u["au"][u["valid"]] for u in corpus["val"]]).double()
    assert after["val/zero/mae"] == pytest.approx(valid_targets.abs().mean().item(), rel=1e-5)
    assert after["val/mean/mae"] == pytest.approx((valid_targets - data.au_mean.double()).abs().mean().item(), rel=1e-5)
    model.eval()
    with torch.no_grad():
        errors = torch.cat([(model(u["mel"][None])[0].clamp(0, 5) - u["au"])[u["valid"]] for u in corpus["val"]])
    assert after["val/mae"] == pytest.approx(errors.abs().mean().item(), rel=1e-4)
    report = model.last_report["val"]
    assert report.num_utterances == len(corpus["val"])
    assert report.model.overall.mae.value == pytest.approx(after["val/mae"])


def test_test_stage_logs_per_au_metrics(trained):
    results = cpu_trainer().test(trained["model"], datamodule=trained["data"], verbose=False)[0]
    for key in ("test/loss", "test/mae", "test/AU12/mae", "test/AU45/ccc_ci_high", "test/mean/AU25/mae"):
        assert key in results, key
    assert "AU26" in trained["model"].last_report["test"].to_markdown()


def test_fit_on_plain_dataloaders_warns_and_skips_the_mean_baseline(corpus):
    model = CAUSERegressor(arch="mlp", scheduler="none", frontend=SMALL_FRONTEND.to_dict())
    train = DataLoader(corpus["train"], batch_size=4, collate_fn=collate)
    val = DataLoader(corpus["val"], batch_size=2, collate_fn=collate)
    trainer = cpu_trainer(max_epochs=1)
    with pytest.warns(UserWarning, match="unnormalised features"):
        trainer.fit(model, train, val)
    assert not model.has_stats
    assert "val/mae" in trainer.callback_metrics and "val/zero/mae" in trainer.callback_metrics
    assert "val/mean/mae" not in trainer.callback_metrics


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="scheduler"):
        CAUSERegressor(scheduler="step")
    with pytest.raises(ValueError, match="warmup"):
        CAUSERegressor(scheduler="plateau", warmup_steps=10)
    with pytest.raises(ValueError, match="unknown CAUSE net"):
        CAUSERegressor(arch="transformer")
    with pytest.raises(ValueError, match="mel_std must be 80"):
        CAUSERegressor().set_normalization(torch.zeros(80), torch.ones(64), torch.zeros(NUM_AUS))


# --- checkpoints: statistics and frontend travel with the model -------------------------------------


def test_checkpoint_holds_stats_and_frontend_and_both_loaders_agree(trained, corpus):
    model, data, checkpoint, latest = trained["model"], trained["data"], trained["checkpoint"], trained["latest"]
    assert math.isfinite(float(checkpoint.best_model_score))
    assert Path(latest.last_model_path).name == "last.ckpt"
    raw = torch.load(latest.last_model_path, map_location="cpu", weights_only=True)
    assert raw["global_step"] == trained["steps"]
    assert raw["cause_pl"]["frontend"] == SMALL_FRONTEND.to_dict()
    assert raw["hyper_parameters"]["frontend"] == SMALL_FRONTEND.to_dict()
    torch.testing.assert_close(raw["state_dict"]["mel_std"], data.mel_std, rtol=0, atol=0)
    assert bool(raw["state_dict"]["stats_set"])

    by_lightning = CAUSERegressor.load_from_checkpoint(latest.last_model_path).eval()
    by_safe_loader = load_cause_checkpoint(latest.last_model_path)
    wave = corpus["val"][0]["wave"]
    expected = estimate_aus(model, wave)
    for loaded in (by_lightning, by_safe_loader):
        assert loaded.frontend_config == SMALL_FRONTEND and loaded.has_stats
        torch.testing.assert_close(loaded.au_mean, data.au_mean, rtol=0, atol=0)
        assert torch.equal(estimate_aus(loaded, wave), expected)
    best = load_cause_checkpoint(checkpoint.best_model_path)
    assert best.hparams.arch == "dcnn" and best.net.in_dim == SMALL_FRONTEND.n_mels


class NotPlainData:
    """Anything but tensors and plain types must not be unpickled by the safe loader."""


def test_safe_loader_refuses_checkpoints_with_arbitrary_objects(tmp_path):
    path = tmp_path / "suspicious.ckpt"
    torch.save(
        {
            "state_dict": CAUSERegressor(arch="mlp").state_dict(),
            "hyper_parameters": {"arch": "mlp", "payload": NotPlainData()},
        },
        path,
    )
    with pytest.raises(ValueError, match="weights_only"):
        load_cause_checkpoint(path)


@pytest.mark.parametrize("statistic", ["mel_mean", "mel_std", "au_mean"])
def test_checkpoint_with_non_finite_statistics_is_refused_naming_it(trained, tmp_path, statistic):
    checkpoint = torch.load(trained["latest"].last_model_path, weights_only=True)
    checkpoint["state_dict"][statistic][0] = float("nan")
    path = tmp_path / "poisoned.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=rf"poisoned\.ckpt: state_dict entry '{statistic}' holds NaN or infinite"):
        load_cause_checkpoint(path)


def test_frontend_mismatch_is_a_clear_error(trained, corpus):
    loaded = load_cause_checkpoint(trained["latest"].last_model_path)
    other = MelConfig()  # 80 bands, f_max 8000: not what the model was trained with
    other_data = InMemoryAUData(corpus["train"][:1], corpus["val"][:1], other)
    with pytest.raises(ValueError, match=r"n_mels: model 64 vs the datamodule 80") as error:
        cpu_trainer().validate(loaded, datamodule=other_data, verbose=False)
    assert "f_max: model 7600.0 vs the datamodule 8000.0" in str(error.value)
    explicit = CAUSERegressor(frontend=other.to_dict())
    with pytest.raises(ValueError, match="frontend differs"):
        cpu_trainer().validate(explicit, datamodule=trained["data"], verbose=False)


# --- prediction ---------------------------------------------------------------------------------


def test_predict_step_unpads_and_matches_inference_from_audio(trained, corpus):
    model = trained["model"]
    utterances = corpus["val"] + corpus["train"][:2]
    loader = DataLoader(utterances, batch_size=3, collate_fn=collate)
    outputs = [item for batch in cpu_trainer().predict(model, loader) for item in batch]
    assert [item["key"] for item in outputs] == [u["key"] for u in utterances]
    for item, utterance in zip(outputs, utterances, strict=True):
        aus = item["au"]
        assert aus.dtype == torch.float32 and aus.device.type == "cpu"
        assert aus.shape == (len(utterance["mel"]), NUM_AUS)
        assert aus.min() >= 0 and aus.max() <= 5
        torch.testing.assert_close(aus, estimate_aus(model, utterance["wave"]), rtol=0, atol=1e-5)


# --- learning: context matters on the synthetic corpus (slow) ----------------------------------------


def fit_and_score(arch: str, data: InMemoryAUData, steps: int, lookahead: int | None = None) -> dict[str, float]:
    torch.manual_seed(0)
    model = CAUSERegressor(arch=arch, lr=3e-3, warmup_steps=20, log_per_au=False, lookahead=lookahead)
    trainer = cpu_trainer(max_steps=steps, check_val_every_n_epoch=1000)
    trainer.fit(model, datamodule=data)
    return trainer.validate(model, datamodule=data, verbose=False)[0]


@pytest.mark.slow
def test_cnn_learns_beyond_baselines_and_beats_the_frame_wise_mlp(capsys):
    """And the causal CNN with 2 look-ahead frames (120 ms streaming latency) stays within 15% of the CNN."""
    config = MelConfig()
    started = time.perf_counter()
    data = InMemoryAUData(
        make_utterances(range(10), 12, config, (2.0, 5.0)),
        make_utterances(range(10, 13), 8, config, (2.0, 5.0)),
        config,
        batch_size=8,
    )
    cnn = fit_and_score("cnn", data, steps=300)
    mlp = fit_and_score("mlp", data, steps=300)
    causal = fit_and_score("causal_cnn", data, steps=300, lookahead=2)
    with capsys.disabled():
        print(
            f"\nheld-out speakers, MAE: CNN {cnn['val/mae']:.3f}, causal CNN L=2 {causal['val/mae']:.3f}, "
            f"MLP {mlp['val/mae']:.3f}, "
            f"zero {cnn['val/zero/mae']:.3f}, mean {cnn['val/mean/mae']:.3f}; "
            f"CCC: CNN {cnn['val/ccc']:.3f}, MLP {mlp['val/ccc']:.3f}; "
            f"{time.perf_counter() - started:.0f} s"
        )
    assert cnn["val/mae"] < 0.8 * cnn["val/mean/mae"] and cnn["val/mae"] < 0.8 * cnn["val/zero/mae"]
    assert cnn["val/mae"] < 0.9 * mlp["val/mae"]
    assert cnn["val/ccc"] > mlp["val/ccc"] + 0.05
    assert causal["val/mae"] < 1.15 * cnn["val/mae"] and causal["val/mae"] < 0.9 * mlp["val/mae"]
