"""AnimationPreviewCallback in real fits: a preview mp4 per validation, and a W&B video when W&B logs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from cause_pl.callbacks import AnimationPreviewCallback
from cause_pl.data import FaceAUDataModule, SpeechAUDataModule
from cause_pl.models import CAUSERegressor, GANimation
from cause_pl.shards.schema import FACES, SPEECH_AU
from tests.builders.mp4_probe import decode_mp4
from tests.inference.test_devices import inputs_of, moves_of


def _fit(module: pl.LightningModule, data: pl.LightningDataModule, callback, logger, root) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        logger=logger,
        callbacks=[callback],
        default_root_dir=root,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)
    return trainer


def _speech_data(quick_demo) -> SpeechAUDataModule:
    return SpeechAUDataModule(
        str(quick_demo.out / "data" / SPEECH_AU), batch_size=4, crop_frames=64, num_workers=0, eval_batch_size=4
    )


def test_cause_fit_writes_a_preview_per_epoch_and_a_wandb_video(quick_demo, tmp_path):
    files = quick_demo.files
    preview = AnimationPreviewCallback(
        audio=str(files["speech"]),
        face=str(files["face"]),
        ganimation_ckpt=str(files["ganimation_checkpoint"]),
        seconds=1.0,
    )
    logger = WandbLogger(project="preview-test", save_dir=str(tmp_path), offline=True)
    trainer = _fit(CAUSERegressor(arch="cnn", log_per_au=False), _speech_data(quick_demo), preview, logger, tmp_path)
    assert trainer.current_epoch == 2
    paths = sorted(preview.last_path.parent.glob("epoch*.mp4"))
    assert [path.name for path in paths] == ["epoch000.mp4", "epoch001.mp4"]  # none for the sanity check
    video = decode_mp4(paths[-1])
    assert len(video.frames) == 25 and video.audio_codec == "aac" and abs(video.audio_seconds - 1.0) <= 1 / 25
    logged = list((tmp_path / "wandb").glob("offline-run-*/files/media/videos/val/animation*.mp4"))
    assert len(logged) == 2


def test_ganimation_fit_previews_with_a_cause_checkpoint(quick_demo, tmp_path):
    files = quick_demo.files
    preview = AnimationPreviewCallback(
        audio=str(files["speech"]), face=str(files["face"]), cause_ckpt=str(files["cause_checkpoint"]), seconds=0.5
    )
    model = GANimation(
        image_size=32,
        g_base_channels=8,
        g_res_blocks=1,
        d_base_channels=8,
        d_layers=3,
        d_max_channels=32,
        critic_steps=1,
    )
    data = FaceAUDataModule(str(quick_demo.out / "data" / FACES), image_size=32, batch_size=4, num_workers=0)
    _fit(model, data, preview, CSVLogger(tmp_path), tmp_path)
    assert model.generator.training  # the preview leaves the trained module as it found it
    assert len(decode_mp4(preview.last_path).frames) == 13


def test_preview_needs_the_other_half(quick_demo, tmp_path):
    files = quick_demo.files
    preview = AnimationPreviewCallback(audio=str(files["speech"]), face=str(files["face"]))
    with pytest.raises(ValueError, match="needs ganimation_ckpt"):
        _fit(CAUSERegressor(arch="mlp"), _speech_data(quick_demo), preview, False, tmp_path)
    with pytest.raises(FileNotFoundError, match="face not found"):
        AnimationPreviewCallback(audio=str(files["speech"]), face=str(tmp_path / "nope.png"))


def _spy_on_previews(monkeypatch, net_of) -> list[tuple[list[str], list, bool]]:
    """Per preview: the trained module's moves, its net's inputs (name, device, inference mode) and
    whether the net was in eval mode; recorded only inside ``on_validation_end``."""
    original = AnimationPreviewCallback.on_validation_end
    previews: list[tuple[list[str], list, bool]] = []

    def spied(self, trainer, pl_module):
        eval_modes = []
        net = net_of(pl_module)
        handle = net.register_forward_pre_hook(lambda module, args: eval_modes.append(not module.training))
        try:
            with moves_of(monkeypatch, pl_module) as moved, inputs_of(net=net) as seen:
                original(self, trainer, pl_module)
        finally:
            handle.remove()
        if seen:
            previews.append((list(moved), list(seen), all(eval_modes)))

    monkeypatch.setattr(AnimationPreviewCallback, "on_validation_end", spied)
    return previews


def test_preview_never_moves_the_trained_module(quick_demo, tmp_path, monkeypatch):
    """The preview runs on the trained module's own device, in eval mode under inference_mode; it must
    not move that module (on a GPU, a move to the CPU broke the next training step)."""
    files = quick_demo.files
    previews = _spy_on_previews(monkeypatch, lambda module: module.net)
    preview = AnimationPreviewCallback(
        audio=str(files["speech"]),
        face=str(files["face"]),
        ganimation_ckpt=str(files["ganimation_checkpoint"]),
        seconds=0.5,
    )
    model = CAUSERegressor(arch="cnn", log_per_au=False)
    trainer = _fit(model, _speech_data(quick_demo), preview, False, tmp_path)
    assert trainer.current_epoch == 2 and len(previews) == 2
    for moved, seen, in_eval in previews:
        assert moved == [], f"the preview moved the trained module: {moved[:5]}"
        assert in_eval and all(device == torch.device("cpu") and inference for _, device, inference in seen)
    assert model.training


class _TrainingDevices(pl.Callback):
    """Records the device types of the trained module's parameters at every training step."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.update(parameter.device.type for parameter in pl_module.parameters())


@pytest.mark.cuda
@pytest.mark.parametrize("trained", ["cause", "ganimation"])
def test_cuda_preview_inside_a_gpu_fit(quick_demo, tmp_path, monkeypatch, trained):
    files = quick_demo.files
    if trained == "cause":
        module: pl.LightningModule = CAUSERegressor(arch="cnn", log_per_au=False)
        data: pl.LightningDataModule = _speech_data(quick_demo)
        partner = {"ganimation_ckpt": str(files["ganimation_checkpoint"])}
        previews = _spy_on_previews(monkeypatch, lambda module: module.net)
    else:
        module = GANimation(
            image_size=32, g_base_channels=8, g_res_blocks=1, d_base_channels=8, d_layers=3, d_max_channels=32
        )
        data = FaceAUDataModule(str(quick_demo.out / "data" / FACES), image_size=32, batch_size=4, num_workers=0)
        partner = {"cause_ckpt": str(files["cause_checkpoint"])}
        previews = _spy_on_previews(monkeypatch, lambda module: module.generator)
    preview = AnimationPreviewCallback(audio=str(files["speech"]), face=str(files["face"]), seconds=0.5, **partner)
    training_devices = _TrainingDevices()
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        callbacks=[preview, training_devices],
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)  # a module moved to the CPU by the preview fails the next training step
    assert trainer.current_epoch == 2 and len(previews) == 2
    for moved, seen, in_eval in previews:
        assert moved == [] and in_eval
        assert all(device.type == "cuda" and inference for _, device, inference in seen), seen[:5]
    # read during training: Lightning's teardown moves the module to the CPU once fit returns
    assert training_devices.seen == {"cuda"}
    assert len(decode_mp4(preview.last_path).frames) == 13
