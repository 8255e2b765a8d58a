"""GANimation (Pumarola et al., 2018) as a LightningModule: AU-conditioned face editing, CAUSE 3.4.

Batch contract (one dict per batch): ``image`` float32 (B, 3, H, W) in [-1, 1]; ``au`` float32
(B, 17) the image's own AU intensities divided by 5; ``target_au`` float32 (B, 17) the AUs of
another random training image divided by 5 plus U(-0.1, 0.1) noise; ``keys`` list[str].
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, cast

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from lightning_fabric.utilities.data import AttributeDict
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.utilities import rank_zero_warn
from torch.optim.lr_scheduler import LambdaLR

from cause_pl.au import NUM_AUS
from cause_pl.models.checkpoints import load_module
from cause_pl.models.ganimation_losses import attention_total_variation, gradient_penalty, wasserstein_gap
from cause_pl.nets.ganimation import GANimationCritic, GANimationGenerator, GeneratorOutput
from cause_pl.targets import model_targets

_BATCH_KEYS = ("image", "au", "target_au")
_CHECKPOINT_KEY = "ganimation_training_state"


class LinearDecaySchedule:
    """Learning-rate factor of the official GANimation schedule for 0-based epoch ``epoch``:
    ``min(1, (constant + decay - epoch) / decay)``, floored at 0.

    Full rate through epoch ``constant``, then ``(decay-1)/decay, ..., 1/decay`` and 0 from epoch
    ``constant + decay`` on: a linear ramp from 1 at the start of epoch ``constant`` to 0 at the
    end of epoch ``constant + decay - 1``, sampled at each epoch's start. ``decay=0``: no decay.
    A callable object (not a lambda), so that LambdaLR can save it in checkpoints.
    """

    def __init__(self, constant: int, decay: int) -> None:
        if constant < 0 or decay < 0:
            raise ValueError(f"LinearDecaySchedule: epochs must be >= 0, got constant={constant}, decay={decay}")
        self.constant, self.decay = constant, decay

    def __call__(self, epoch: int) -> float:
        if self.decay == 0:
            return 1.0
        return max(0.0, min(1.0, (self.constant + self.decay - epoch) / self.decay))


class GANimation(pl.LightningModule):
    """GANimation generator + critic trained with WGAN-GP, manual optimisation.

    Loss weights, each per element of its term (all terms are batch means):

    * ``lambda_gp`` 10: WGAN-GP penalty ``(||grad||_2 - 1)^2`` per sample. The critic's per-image
      score inside the penalty is the *sum* over its realness map, as in the official code, so at
      the default 2x2 map the map *mean* used by the adversarial terms is held to slope ~1/4;
      keeping this keeps the adversarial term's scale relative to the weights below as officially.
      ``gp_fraction`` (default 1, official) computes it on that share of the batch's (real, fake)
      pairs only: the same expectation from fewer samples, for a cheaper critic step.
    * ``lambda_cond`` 160: squared error per AU per image on the /5 scale, both for the critic's
      AU head on real images (vs ``au``) and for the generator's fakes (vs ``target_au``). The
      official 4000 divides an already averaged MSE again by its batch of 25: 4000 / 25 = 160.
    * ``lambda_cycle`` 10: absolute error per pixel and channel between ``G(G(F, y), y')`` and
      ``F`` (identity loss, images in [-1, 1]).
    * ``lambda_attn_mean`` 0.1: per attention pixel, on both generator passes (mask values in
      (0, 1); 1 keeps the input, so this pushes the generator to edit).
    * ``lambda_attn_tv`` 2.5e-4: per absolute neighbour difference of the attention mask, summed
      over each mask and averaged over the batch, on both passes. The official code sums over its
      batch of 25 too and weights that by 1e-5: 25 x 1e-5 = 2.5e-4 (GANimation paper: 1e-4 with
      squared differences).

    The adversarial terms have weight 1. One critic step per batch; every ``critic_steps``-th
    batch also one generator step. ``critic_warmup_steps`` (default 0) first batches are an AU
    warm-up: the critic learns only the real images' AUs (its ``lambda_cond`` term; no generator,
    no adversarial terms), so the generator's condition loss points the right way from its first
    step instead of following an untrained AU head (a short schedule edits sooner). The fakes'
    mean attention is logged every batch (``attention/mean``) and checked on generator steps:
    above ``saturation_threshold`` a warning (at most one per epoch) names the usual causes.
    Lightning's ``global_step`` (and so ``max_steps``) counts both optimisers' steps:
    ``critic_steps + 1`` per ``critic_steps`` batches, one per warm-up batch.

    Learning rates: constant, then linear decay (:class:`LinearDecaySchedule`); train for
    ``max_epochs = epochs_constant + epochs_decay`` (official: 20 + 10).

    Distributed training: the critic step's backward leaves every generator parameter without a
    gradient (it sees the fakes detached) and the generator step toggles the critic off,
    so DDP needs ``strategy="ddp_find_unused_parameters_true"``. The critic's AU head itself is
    used in both steps. There are no collectives beyond Lightning's own; the saturation check is
    rank-local and warns from rank 0 only.

    Conditioning: the 17 AUs divided by 5 (``cond_dim`` 17), or the ``targets`` the faces are
    labelled with (:mod:`cause_pl.targets`, e.g. ``emotions`` for the paper's CME baseline: 8 class
    probabilities), divided by their upper bound; ``cond_dim`` is then their size.
    """

    num_val_samples = 8
    """How many images of the first validation batch :attr:`val_samples` keeps for callbacks."""
    hparams: AttributeDict  # what save_hyperparameters() stores; Lightning's property type also allows a plain mapping

    def __init__(
        self,
        image_size: int = 128,
        cond_dim: int = NUM_AUS,
        g_base_channels: int = 64,
        g_res_blocks: int = 6,
        d_base_channels: int = 64,
        d_layers: int = 6,
        d_max_channels: int = 2048,
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        critic_steps: int = 5,
        critic_warmup_steps: int = 0,
        gp_fraction: float = 1.0,
        lambda_gp: float = 10.0,
        lambda_cond: float = 160.0,
        lambda_cycle: float = 10.0,
        lambda_attn_mean: float = 0.1,
        lambda_attn_tv: float = 2.5e-4,
        epochs_constant: int = 20,
        epochs_decay: int = 10,
        saturation_threshold: float = 0.95,
        targets: str | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if critic_steps < 1:
            raise ValueError(f"GANimation: critic_steps must be >= 1, got {critic_steps}")
        if critic_warmup_steps < 0:
            raise ValueError(f"GANimation: critic_warmup_steps must be >= 0, got {critic_warmup_steps}")
        if not 0 < gp_fraction <= 1:
            raise ValueError(f"GANimation: gp_fraction must be in (0, 1], got {gp_fraction}")
        if not 0 < saturation_threshold < 1:
            raise ValueError(f"GANimation: saturation_threshold must be in (0, 1), got {saturation_threshold}")
        weights = {
            "lambda_gp": lambda_gp,
            "lambda_cond": lambda_cond,
            "lambda_cycle": lambda_cycle,
            "lambda_attn_mean": lambda_attn_mean,
            "lambda_attn_tv": lambda_attn_tv,
        }
        negative = {name: value for name, value in weights.items() if value < 0}
        if negative:
            raise ValueError(f"GANimation: loss weights must be >= 0, got {negative}")
        self.schedule = LinearDecaySchedule(epochs_constant, epochs_decay)
        spec = model_targets(targets, cond_dim)
        targets = None if targets is None else spec.to_dict()
        self.save_hyperparameters()
        self.hparams["cond_dim"] = cond_dim = spec.size
        self.targets = spec
        """What the conditioning vector holds (the 17 AUs unless ``targets`` says), divided by its upper bound."""
        self.automatic_optimization = False
        self.generator = GANimationGenerator(image_size, cond_dim, g_base_channels, num_res_blocks=g_res_blocks)
        self.critic = GANimationCritic(image_size, cond_dim, d_base_channels, d_layers, d_max_channels)
        self.val_samples: dict[str, torch.Tensor] | None = None
        self._critic_updates = 0
        self._warmup_updates = 0
        self._mix_generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        self._saturation_warned_epoch = -1

    def setup(self, stage: str) -> None:
        """Faces labelled with other targets than the model is conditioned on are a one-line error."""
        data_targets = getattr(getattr(self.trainer, "datamodule", None), "targets", None)
        if data_targets is not None and data_targets.columns != self.targets.columns:
            raise ValueError(
                f"GANimation is conditioned on {self.targets.name!r} ({self.targets.size}), the faces are labelled "
                f"with {data_targets.name!r} ({data_targets.size}); set --model.init_args.targets {data_targets.name}"
            )

    def forward(self, image: torch.Tensor, au: torch.Tensor) -> GeneratorOutput:
        """Edit ``image`` (B, 3, H, W) in [-1, 1] towards ``au`` (B, cond_dim) on the /5 scale."""
        return self.generator(image, au)

    @torch.no_grad()
    def generate(self, image: torch.Tensor, au: torch.Tensor) -> GeneratorOutput:
        """Inference: the generator in eval mode without gradients, inputs moved to its device."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(image.to(self.device), au.to(self.device))
        finally:
            self.generator.train(was_training)

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[LambdaLR]]:
        hp = self.hparams
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g, betas=tuple(hp.betas))
        opt_d = torch.optim.Adam(self.critic.parameters(), lr=hp.lr_d, betas=tuple(hp.betas))
        return [opt_g, opt_d], [LambdaLR(opt_g, self.schedule), LambdaLR(opt_d, self.schedule)]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        image, au, target_au = _unpack(batch)
        opt_g, opt_d = cast(list[LightningOptimizer], self.optimizers())  # the two of configure_optimizers
        size = image.shape[0]
        if self._warmup_updates < self.hparams.critic_warmup_steps:
            self._warm_up_critic(image, au, opt_d)
            return

        generator_turn = (self._critic_updates + 1) % self.hparams.critic_steps == 0
        with torch.set_grad_enabled(generator_turn):  # the generator step below reuses this forward's graph
            edited = self.generator(image, target_au)
        attention_mean = edited.attention.detach().float().mean()
        critic_terms = self._critic_losses(image, au, edited.image)
        opt_d.zero_grad()
        self.manual_backward(critic_terms["d/loss"])
        opt_d.step()
        self._critic_updates += 1
        self.log_dict(critic_terms, batch_size=size)
        self.log("attention/mean", attention_mean, batch_size=size, prog_bar=True)

        if generator_turn:
            with self.toggled_optimizer(opt_g):
                generator_terms = self._generator_losses(image, au, target_au, edited)
                opt_g.zero_grad()
                self.manual_backward(generator_terms["g/loss"])
                opt_g.step()
            self.log_dict(generator_terms, batch_size=size)
            self._check_saturation(attention_mean)

    def _warm_up_critic(self, real: torch.Tensor, au: torch.Tensor, opt_d: LightningOptimizer) -> None:
        """One AU warm-up step: the critic's AU head (and trunk) regresses the real images' AUs."""
        cond = F.mse_loss(self.critic(real)[1].float(), au)
        opt_d.zero_grad()
        self.manual_backward(self.hparams.lambda_cond * cond)
        opt_d.step()
        self._warmup_updates += 1
        self.log("d/cond", cond.detach(), batch_size=real.shape[0])

    def _critic_losses(self, real: torch.Tensor, au: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        hp = self.hparams
        real_scores, real_aus = self.critic(real)
        fake_scores, _ = self.critic(fake.detach())
        gap = wasserstein_gap(real_scores, fake_scores)
        pairs = max(1, round(hp.gp_fraction * real.shape[0]))  # batches are shuffled: the first pairs are a sample
        mix = torch.rand(pairs, generator=self._mix_generator)
        penalty = gradient_penalty(self._summed_realness, real[:pairs], fake[:pairs], mix)
        cond = F.mse_loss(real_aus.float(), au)
        loss = -gap + hp.lambda_gp * penalty + hp.lambda_cond * cond
        return {"d/loss": loss, "d/wasserstein": gap.detach(), "d/gp": penalty.detach(), "d/cond": cond.detach()}

    def _summed_realness(self, images: torch.Tensor) -> torch.Tensor:
        return self.critic(images)[0].flatten(1).sum(dim=1)

    def _generator_losses(
        self, image: torch.Tensor, au: torch.Tensor, target_au: torch.Tensor, edited: GeneratorOutput
    ) -> dict[str, torch.Tensor]:
        """The generator's terms; ``edited`` = ``generator(image, target_au)`` with its graph (the
        critic step made it with the same generator weights, so it is reused, not recomputed)."""
        hp = self.hparams
        fake_scores, fake_aus = self.critic(edited.image)
        reconstructed = self.generator(edited.image, au)
        adversarial = -fake_scores.float().mean()
        cond = F.mse_loss(fake_aus.float(), target_au)
        cycle = F.l1_loss(reconstructed.image.float(), image)
        masks = (edited.attention, reconstructed.attention)
        attn_mean = masks[0].float().mean() + masks[1].float().mean()
        attn_tv = attention_total_variation(masks[0]) + attention_total_variation(masks[1])
        loss = (
            adversarial
            + hp.lambda_cond * cond
            + hp.lambda_cycle * cycle
            + hp.lambda_attn_mean * attn_mean
            + hp.lambda_attn_tv * attn_tv
        )
        return {
            "g/loss": loss,
            "g/adv": adversarial.detach(),
            "g/cond": cond.detach(),
            "g/cycle": cycle.detach(),
            "g/attn_mean": attn_mean.detach(),
            "g/attn_tv": attn_tv.detach(),
        }

    def _check_saturation(self, attention_mean: torch.Tensor) -> None:
        value = float(attention_mean)
        epoch = self.current_epoch
        if value <= self.hparams.saturation_threshold or self._saturation_warned_epoch == epoch:
            return
        self._saturation_warned_epoch = epoch
        rank_zero_warn(
            f"GANimation epoch {epoch}: mean attention {value:.3f} > saturation_threshold "
            f"{self.hparams.saturation_threshold}: the generator barely edits (output ~= input). "
            "Likely causes: AU labels that do not match the images (not "
            "divided by 5, misaligned keys, failed OpenFace rows), or loss weights that make "
            "editing not worth it (lambda_cond too low, lambda_attn_mean too low, lambda_cycle "
            "too high)."
        )

    def on_train_epoch_end(self) -> None:
        with warnings.catch_warnings():  # an epoch of critic warm-up ends before the generator's first step
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)` before", UserWarning)
            for scheduler in cast(list[LambdaLR], self.lr_schedulers()):  # the two of configure_optimizers
                scheduler.step()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        image, au, target_au = _unpack(batch)
        if self.val_samples is None:
            keep = slice(0, self.num_val_samples)
            self.val_samples = {
                "image": image[keep].detach().cpu(),
                "au": au[keep].detach().cpu(),
                "target_au": target_au[keep].detach().cpu(),
            }
        edited = self.generator(image, target_au)
        reconstructed = self.generator(edited.image, au)
        metrics = {
            "val/attention_mean": edited.attention.float().mean(),
            "val/cycle": F.l1_loss(reconstructed.image.float(), image),
        }
        self.log_dict(metrics, batch_size=image.shape[0], sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[_CHECKPOINT_KEY] = {
            "critic_updates": self._critic_updates,
            "warmup_updates": self._warmup_updates,
            "mix_generator": self._mix_generator.get_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if _CHECKPOINT_KEY not in checkpoint:
            raise ValueError(
                f"GANimation checkpoint lacks '{_CHECKPOINT_KEY}' (critic step count and penalty "
                "RNG); it was not written by GANimation"
            )
        state = checkpoint[_CHECKPOINT_KEY]
        self._critic_updates = int(state["critic_updates"])
        self._warmup_updates = int(state.get("warmup_updates", 0))  # absent before the warm-up existed
        self._mix_generator.set_state(state["mix_generator"].cpu())  # a CPU generator; map_location may have moved it


def _unpack(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    missing = [key for key in _BATCH_KEYS if key not in batch]
    if missing:
        raise KeyError(f"GANimation batch lacks {missing}; expected keys {_BATCH_KEYS} (+ 'keys')")
    image, au, target_au = (batch[key] for key in _BATCH_KEYS)
    if au.shape != target_au.shape or au.shape[:1] != image.shape[:1]:
        raise ValueError(
            f"GANimation batch: image {tuple(image.shape)}, au {tuple(au.shape)} and target_au "
            f"{tuple(target_au.shape)} must share the batch size, au and target_au their shape"
        )
    return image, au.float(), target_au.float()


def load_ganimation_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> GANimation:
    """Rebuild a ``GANimation`` (in eval mode) from a checkpoint, unpickling only plain data."""
    return load_module(GANimation, path, map_location)
