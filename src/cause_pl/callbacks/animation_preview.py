"""``AnimationPreviewCallback``: after validation, a short speech-driven animation made with the
model being trained, so a run can be watched as well as read.

Attach it to either half of the system: training a :class:`~cause_pl.models.CAUSERegressor`, it
needs a trained GANimation checkpoint (``ganimation_ckpt``) to draw the AUs it predicts; training a
:class:`~cause_pl.models.GANimation`, it needs a CAUSE checkpoint (``cause_ckpt``) to turn the
speech into AUs. The first ``seconds`` of ``audio`` animate the image ``face``.

Where it goes (global rank zero, not during the sanity check): always the file
``{trainer.log_dir or default_root_dir}/animation_preview/epoch{E:03d}.mp4`` (H.264 + AAC, with
the speech); with a ``WandbLogger`` also ``val/animation`` as a W&B video at ``trainer.global_step``.

Devices (*docs/design.md, "Devices"*): the module being trained is never moved. The preview runs on
its current device (the partner checkpoint is moved there), in eval mode under ``inference_mode``;
afterwards every submodule is back in the mode it was in. Only rank zero renders; the other ranks go
on to the next step and wait for it in their first collective.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.trainer.states import TrainerFn

from cause_pl.inference.animator import SpeechToFaceAnimator
from cause_pl.inference.estimate import module_device
from cause_pl.media.audio import load_audio
from cause_pl.media.image import load_face
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint

PREVIEW_DIRNAME = "animation_preview"
PREVIEW_KEY = "val/animation"


class AnimationPreviewCallback(pl.Callback):
    """Render ``seconds`` of ``audio`` on ``face`` every ``every_n_epochs`` validations of a fit."""

    def __init__(
        self,
        audio: str,
        face: str,
        cause_ckpt: str | None = None,
        ganimation_ckpt: str | None = None,
        seconds: float = 4.0,
        every_n_epochs: int = 1,
        au_scale: float = 1.0,
    ) -> None:
        if seconds <= 0 or every_n_epochs < 1:
            raise ValueError(
                f"AnimationPreviewCallback: need seconds > 0 and every_n_epochs >= 1, "
                f"got {seconds} and {every_n_epochs}"
            )
        for name, path in (
            ("audio", audio),
            ("face", face),
            ("cause_ckpt", cause_ckpt),
            ("ganimation_ckpt", ganimation_ckpt),
        ):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"AnimationPreviewCallback: {name} not found: {path}")
        self.audio, self.face = Path(audio), Path(face)
        self.cause_ckpt, self.ganimation_ckpt = cause_ckpt, ganimation_ckpt
        self.seconds, self.every_n_epochs, self.au_scale = seconds, every_n_epochs, au_scale
        self._partner: CAUSERegressor | GANimation | None = None
        self._preview_dir: Path | None = None
        self.last_path: Path | None = None
        """The latest preview written, for tests and notebooks."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if isinstance(pl_module, CAUSERegressor):
            if self.ganimation_ckpt is None:
                raise ValueError("AnimationPreviewCallback: training CAUSE, the preview needs ganimation_ckpt")
        elif isinstance(pl_module, GANimation):
            if self.cause_ckpt is None:
                raise ValueError("AnimationPreviewCallback: training GANimation, the preview needs cause_ckpt")
        else:
            raise TypeError(
                f"AnimationPreviewCallback: works with CAUSERegressor or GANimation, not {type(pl_module).__name__}"
            )
        # trainer.log_dir broadcasts: it must be read on every rank, so here rather than on rank 0.
        self._preview_dir = Path(trainer.log_dir or trainer.default_root_dir) / PREVIEW_DIRNAME

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if fitting and (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if self._preview_dir is None:
            raise RuntimeError("AnimationPreviewCallback: setup() was not called by the trainer")
        path = self._preview_dir / f"epoch{trainer.current_epoch:03d}.mp4"
        self._render(pl_module, path)
        self.last_path = path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_video(
                    PREVIEW_KEY,
                    [str(path)],
                    step=trainer.global_step,
                    caption=[f"epoch {trainer.current_epoch} · {self.audio.name}"],
                    format=["mp4"],
                )

    def _render(self, pl_module: pl.LightningModule, path: Path) -> None:
        """The preview on ``pl_module``'s current device, in eval mode; every submodule's mode restored."""
        cause, ganimation = self._halves(pl_module)
        modes = [(module, module.training) for half in (cause, ganimation) for module in half.modules()]
        try:
            with torch.inference_mode():
                animator = SpeechToFaceAnimator(cause, ganimation, au_scale=self.au_scale)
                wave = load_audio(self.audio, animator.sample_rate)[: int(self.seconds * animator.sample_rate)]
                animator.render(wave, load_face(self.face, animator.image_size), path)
        finally:
            for module, training in modes:
                module.training = training

    def _halves(self, pl_module: pl.LightningModule) -> tuple[CAUSERegressor, GANimation]:
        """(CAUSE, GANimation): the module being trained, unmoved, and its partner from the checkpoint moved
        to the trained module's device."""
        if isinstance(pl_module, CAUSERegressor):
            if not isinstance(self._partner, GANimation):
                assert self.ganimation_ckpt is not None, "checked in setup()"
                self._partner = load_ganimation_checkpoint(self.ganimation_ckpt)
            return pl_module, self._partner.to(module_device(pl_module))
        assert isinstance(pl_module, GANimation), "checked in setup()"
        if not isinstance(self._partner, CAUSERegressor):
            assert self.cause_ckpt is not None, "checked in setup()"
            self._partner = load_cause_checkpoint(self.cause_ckpt)
        return self._partner.to(module_device(pl_module)), pl_module
