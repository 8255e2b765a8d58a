"""The demo's training: CAUSE's CNN, the face AU reader (run in a second process beside CAUSE, right
after that process has written the face corpus) and the small GANimation, with the sizes and budgets
of :class:`~cause_pl.demo.plan.DemoPlan`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from cause_pl.callbacks import SampleGridCallback
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.data.speech import SpeechAUDataModule
from cause_pl.demo.plan import DemoPlan
from cause_pl.evaluation.ganimation import fit_face_au_regressor
from cause_pl.media.atomic import atomic_output
from cause_pl.models.cause import CAUSERegressor
from cause_pl.models.ganimation import GANimation
from cause_pl.synthetic.corpus import describe, write_face_corpus


def _trainer(out: Path, name: str, max_epochs: int, **options: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=CSVLogger(out / "logs", name=name),
        enable_checkpointing=False,
        log_every_n_steps=10,
        default_root_dir=out / "logs",
        **options,
    )


def train_cause(plan: DemoPlan, shards: Path, checkpoint: Path) -> CAUSERegressor:
    """The paper's CNN, trained on the speech shards; saved to ``checkpoint``."""
    model = CAUSERegressor(arch="cnn", lr=3e-3, scheduler="cosine", warmup_steps=20, log_per_au=False)
    data = SpeechAUDataModule(
        str(shards),
        batch_size=16,
        crop_frames=128,
        num_workers=plan.workers,
        train_samples_per_epoch=plan.cause_samples_per_epoch,
        shuffle_buffer=200,
        eval_batch_size=8,
        seed=plan.seed,
    )
    trainer = _trainer(checkpoint.parent.parent, "cause", plan.cause_epochs, gradient_clip_val=1.0)
    torch.set_num_threads(plan.cause_threads)
    trainer.fit(model, data)
    trainer.save_checkpoint(checkpoint, weights_only=False)
    return model


def demo_ganimation(plan: DemoPlan) -> GANimation:
    """The demo's small GANimation: ``plan``'s sizes, a critic AU warm-up of ``plan.gan_warmup_epochs``,
    then a generator step on every batch, the gradient penalty on half of each batch."""
    return GANimation(
        image_size=plan.gan_image_size,
        g_base_channels=plan.gan_generator_channels,
        g_res_blocks=3,
        d_base_channels=32,
        d_layers=min(5, int(np.log2(plan.gan_image_size)) - 1),
        d_max_channels=512,
        lr_g=5e-4,
        lr_d=5e-4,
        critic_steps=1,
        critic_warmup_steps=plan.gan_warmup_epochs * (plan.gan_samples_per_epoch // plan.gan_batch_size),
        gp_fraction=0.5,  # the penalty on 8 of 16 pairs: ~7% less time per batch, spent on 25% more batches
        epochs_constant=plan.gan_warmup_epochs + plan.gan_epochs_constant,
        epochs_decay=plan.gan_epochs_decay,
        lambda_attn_tv=1e-5,  # the official 2.5e-4 smooths the masks more and edited no better (at 240 batches)
        saturation_threshold=0.99,
    )


def train_ganimation(plan: DemoPlan, shards: Path, checkpoint: Path) -> GANimation:
    """:func:`demo_ganimation` trained on the face shards; saved to ``checkpoint``."""
    model = demo_ganimation(plan)
    data = FaceAUDataModule(
        str(shards),
        image_size=plan.gan_image_size,
        batch_size=plan.gan_batch_size,
        train_samples_per_epoch=plan.gan_samples_per_epoch,
        num_workers=1,
        shuffle_buffer=300,
        eval_batch_size=16,
        seed=plan.seed,
    )
    trainer = _trainer(
        checkpoint.parent.parent,
        "ganimation",
        plan.gan_epochs,
        limit_val_batches=2,
        precision=plan.gan_precision,
        callbacks=[SampleGridCallback(num_faces=4)],
    )
    torch.set_num_threads(plan.gan_threads)
    trainer.fit(model, data)
    trainer.save_checkpoint(checkpoint, weights_only=False)
    return model


def face_data(plan: DemoPlan, shards: Path) -> FaceAUDataModule:
    """The face shards as the AU reader trains on them and the scores read them (batch 16, in-process, seeded)."""
    return FaceAUDataModule(str(shards), batch_size=16, num_workers=0, image_size=plan.gan_image_size, seed=plan.seed)


def train_face_au_reader(plan: DemoPlan, faces: Path, weights: Path) -> None:
    """The independent face AU reader that scores GANimation, fitted as ``ganimation-eval`` fits it
    (``plan.reader_steps`` steps on the training faces, seeded) on one thread; saved to ``weights``."""
    torch.set_num_threads(1)
    torch.manual_seed(plan.seed)
    reader = fit_face_au_regressor(face_data(plan, faces).train_dataloader(), plan.reader_steps)
    with atomic_output(weights) as temporary:
        torch.save(reader.state_dict(), temporary)


def write_faces_and_fit_reader(plan: DemoPlan, faces: Path, weights: Path) -> tuple[str, dict[str, float]]:
    """The demo's second process: the face corpus (one process), then the face AU reader on it. Neither
    needs the speech corpus or CAUSE, so both run beside them. Returns the corpus' description and
    the seconds of each part."""
    started = time.perf_counter()
    description = describe(write_face_corpus(faces, plan.corpus))
    written = time.perf_counter()
    train_face_au_reader(plan, faces, weights)
    return description, {"faces": written - started, "face AU reader": time.perf_counter() - written}
