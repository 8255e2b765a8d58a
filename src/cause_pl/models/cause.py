"""``CAUSERegressor``: the LightningModule that trains a CAUSE net (log-mel frames -> AU intensities).

The module owns everything needed to turn raw audio into AUs after training: the frontend
parameters (``frontend`` hyperparameter, also stored under ``checkpoint["cause_pl"]``) and the
normalisation statistics (persistent buffers ``mel_mean``, ``mel_std``, ``au_mean`` and the flag
``stats_set``). They are copied once from the datamodule (``frontend_config``, ``mel_mean``,
``mel_std``, ``au_mean``) when a fresh model is first set up, and never recomputed: a trained or
resumed model keeps its own and refuses data made with a different frontend.

Batches are the speech datamodule's dicts: ``mel`` (B, T, n_mels) raw log-mel, ``au`` (B, T, K) on
the 0..5 scale, ``mask`` (B, T) bool (valid and not padding), ``lengths`` (B,), ``keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.data import AttributeDict
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from cause_pl.au import NUM_AUS
from cause_pl.features.mel import MelConfig, MelFrontend
from cause_pl.metrics.au_metrics import AUMetrics
from cause_pl.metrics.report import AUReport
from cause_pl.models.checkpoints import check_fits, load_module
from cause_pl.models.schedules import SCHEDULERS, lr_schedule
from cause_pl.nets.cause import CauseNet
from cause_pl.nets.outputs import TargetActivation, target_loss
from cause_pl.nets.registry import build_cause_net
from cause_pl.targets import TargetSpec, model_targets

MIN_MEL_STD = 1e-3
"""Floor on a band's std when normalising, so a constant band does not blow up (log-mel units)."""


CHECKPOINT_KEY = "cause_pl"


DATAMODULE_STATS: tuple[str, ...] = ("frontend_config", "mel_mean", "mel_std", "au_mean")
"""What a datamodule exposes for the model to copy its normalisation from."""


def _as_config(frontend: MelConfig | Mapping[str, Any]) -> MelConfig:
    return frontend if isinstance(frontend, MelConfig) else MelConfig.from_dict(frontend)


def _frontend_mismatch(ours: MelConfig, theirs: MelConfig, what: str) -> ValueError:
    ours_dict, theirs_dict = ours.to_dict(), theirs.to_dict()
    differences = ", ".join(
        f"{name}: model {ours_dict[name]!r} vs {what} {theirs_dict[name]!r}"
        for name in ours_dict
        if ours_dict[name] != theirs_dict[name]
    )
    return ValueError(
        f"CAUSERegressor: the model's frontend differs from {what}'s ({differences}).\n"
        f"  model: {ours_dict}\n  {what}: {theirs_dict}\n"
        "Features must be computed exactly as in training: rebuild the data with the model's "
        "frontend, or train a new model on this data."
    )


def _statistic(name: str, value: Tensor, size: int) -> Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float32).detach().cpu()
    if tensor.shape != (size,) or not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be {size} finite values, got shape {tuple(tensor.shape)}")
    return tensor


class CAUSERegressor(pl.LightningModule):
    """Train and evaluate one of the paper's CAUSE nets; see the module docstring for the data.

    Args (plain types, so LightningCLI and W&B sweeps can set them):
        arch: ``mlp``, ``rnn``, ``cnn`` or ``dcnn`` (paper section 3.3), or the streaming
            ``causal_cnn`` / ``causal_dcnn`` (:mod:`cause_pl.nets.causal`).
        lookahead: future frames a causal net reads (``None``: its default, 2); causal nets only.
        lr, weight_decay, betas: AdamW (decoupled decay; with ``weight_decay=0`` it is Adam).
        scheduler: one of ``SCHEDULERS``; warmup_steps: linear warmup (not with ``plateau``).
        dropout: the net's dropout; ``None`` keeps the paper's (0.1, none for the RNN).
        frontend: ``MelConfig.to_dict()``; ``None`` takes the datamodule's at the first setup.
        num_aus: targets per frame; with ``targets`` given, their size (the default 17 gives way).
        targets: what the net regresses: a preset name (``emotions``, ``disfa``, ...) or a
            ``TargetSpec.to_dict()`` (:mod:`cause_pl.targets`); ``None`` takes the datamodule's at
            the first setup, or the 17 AUs without one. Stored as the spec's dict.
        log_per_au: also log per-AU metrics (``val/AU12/mae`` ...), not only AU averages. For 17 AUs
            that is 650 keys with their intervals instead of 38, which Lightning's logging takes
            0.3-0.7 s per validation to record on a 2-core CPU (0.02-0.04 s for the 38).
    """

    hparams: AttributeDict  # what save_hyperparameters() stores; Lightning's property type also allows a plain mapping
    mel_mean: Tensor  # buffers (register_buffer in __init__)
    mel_std: Tensor
    au_mean: Tensor
    stats_set: Tensor

    def __init__(
        self,
        arch: str = "cnn",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        scheduler: str = "cosine",
        warmup_steps: int = 0,
        dropout: float | None = None,
        frontend: dict[str, Any] | None = None,
        num_aus: int = NUM_AUS,
        log_per_au: bool = True,
        lookahead: int | None = None,
        targets: str | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if scheduler not in SCHEDULERS:
            raise ValueError(f"CAUSERegressor: scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if scheduler == "plateau" and warmup_steps:
            raise ValueError("CAUSERegressor: warmup_steps is not supported with scheduler='plateau'")
        if lr <= 0 or warmup_steps < 0 or num_aus < 1:
            raise ValueError(
                f"CAUSERegressor: need lr > 0, warmup_steps >= 0, num_aus >= 1; "
                f"got lr={lr}, warmup_steps={warmup_steps}, num_aus={num_aus}"
            )
        # Stored as plain types (hparams go into checkpoints loaded with weights_only=True).
        betas = (float(betas[0]), float(betas[1]))
        frontend = None if frontend is None else _as_config(frontend).to_dict()
        spec = model_targets(targets, num_aus)
        targets = None if targets is None else spec.to_dict()
        self.save_hyperparameters()
        self.hparams["num_aus"] = spec.size
        self._targets = spec
        self._targets_given = targets is not None
        self._frontend_given = frontend is not None
        config = MelConfig.from_dict(frontend) if frontend is not None else MelConfig()
        self._frontend_config = config
        self.net: CauseNet = self._build_net(config.n_mels)
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))
        self.register_buffer("au_mean", torch.zeros(spec.size))
        self.register_buffer("stats_set", torch.tensor(False))
        self.last_report: dict[str, AUReport] = {}
        """The latest ``AUReport`` per stage ("val", "test"), for callbacks and notebooks."""
        self._metrics: dict[str, AUMetrics] = {}

    def _build_net(self, n_mels: int) -> CauseNet:
        options: dict[str, float] = {} if self.hparams.dropout is None else {"dropout": self.hparams.dropout}
        if self.hparams.lookahead is not None:
            options["lookahead"] = self.hparams.lookahead
        return build_cause_net(self.hparams.arch, in_dim=n_mels, out_dim=self.hparams.num_aus, **options)

    # --- targets, frontend and normalisation -----------------------------------------------------

    @property
    def targets(self) -> TargetSpec:
        """What the net regresses per frame (names, range, kind)."""
        return self._targets

    def finalise(self, raw: Tensor) -> Tensor:
        """Raw net outputs -> targets: clamped to their range, or a softmax for distributions."""
        return TargetActivation(self._targets)(raw)

    def _use_targets(self, spec: TargetSpec, source: str) -> None:
        """Adopt ``spec`` while the model is untrained and was given none; otherwise it must be equal."""
        if spec == self._targets:
            return
        if self._targets_given or self.has_stats:
            raise ValueError(
                f"CAUSERegressor: {source} has targets {spec.name!r} ({spec.size}: {', '.join(spec.labels[:4])}, ...), "
                f"the model regresses {self._targets.name!r} ({self._targets.size})"
            )
        self._targets = spec
        self.hparams["targets"], self.hparams["num_aus"] = spec.to_dict(), spec.size
        self.net = self._build_net(self._frontend_config.n_mels)
        self.au_mean = torch.zeros(spec.size, device=self.au_mean.device)

    @property
    def frontend_config(self) -> MelConfig:
        """The frontend the model's features are (to be) computed with."""
        return self._frontend_config

    def frontend(self) -> MelFrontend:
        """A new ``MelFrontend`` (on CPU) that computes this model's input features from audio."""
        return MelFrontend(self._frontend_config)

    @property
    def has_stats(self) -> bool:
        """Whether the normalisation statistics were set (from data, a checkpoint or by hand)."""
        return bool(self.stats_set)

    def set_normalization(
        self, mel_mean: Tensor, mel_std: Tensor, au_mean: Tensor, frontend: MelConfig | Mapping[str, Any] | None = None
    ) -> None:
        """Store the statistics (and frontend) the model trains with; inference reuses them."""
        if frontend is not None:
            self._use_frontend(_as_config(frontend), "the given frontend")
        n_mels = self._frontend_config.n_mels
        mel_std = _statistic("mel_std", mel_std, n_mels)
        if (mel_std < 0).any():
            raise ValueError("mel_std must be >= 0")
        with torch.no_grad():
            self.mel_mean.copy_(_statistic("mel_mean", mel_mean, n_mels))
            self.mel_std.copy_(mel_std)
            self.au_mean.copy_(_statistic("au_mean", au_mean, self.hparams.num_aus))
            self.stats_set.fill_(True)

    def _use_frontend(self, config: MelConfig, source: str) -> None:
        """Adopt ``config`` while the frontend is still provisional; otherwise it must be equal."""
        if config == self._frontend_config:
            return
        if self._frontend_given or self.has_stats:
            raise _frontend_mismatch(self._frontend_config, config, source)
        if config.n_mels != self._frontend_config.n_mels:  # untrained: rebuild for the new width
            self.net = self._build_net(config.n_mels)
            self.mel_mean = torch.zeros(config.n_mels, device=self.mel_mean.device)
            self.mel_std = torch.ones(config.n_mels, device=self.mel_std.device)
        self._frontend_config = config
        self.hparams["frontend"] = config.to_dict()

    def setup(self, stage: str) -> None:
        """Copy the datamodule's frontend and statistics into a fresh model; check a trained one."""
        datamodule = getattr(self.trainer, "datamodule", None)
        provided: dict[str, Any] = {name: getattr(datamodule, name, None) for name in DATAMODULE_STATS}
        if any(value is None for value in provided.values()):
            if not self.has_stats and stage == "fit":
                rank_zero_warn(
                    "CAUSERegressor: no datamodule with frontend_config/mel_mean/mel_std/"
                    "au_mean; training on unnormalised features without a mean-AU baseline"
                )
            return
        if (targets := getattr(datamodule, "targets", None)) is not None:
            self._use_targets(targets, "the datamodule")
        self._use_frontend(_as_config(provided["frontend_config"]), "the datamodule")
        if not self.has_stats:
            self.set_normalization(provided["mel_mean"], provided["mel_std"], provided["au_mean"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"frontend": self._frontend_config.to_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get(CHECKPOINT_KEY, {}).get("frontend")
        if stored is not None:
            self._use_frontend(MelConfig.from_dict(stored), "the checkpoint")
        check_fits(self, checkpoint, "net.", ("arch", "lookahead"))  # one line, not load_state_dict's wall of keys

    # --- forward, loss, evaluation ----------------------------------------------------------------

    def forward(self, mel: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Raw log-mel (B, T, n_mels) -> AU intensities (B, T, num_aus), unclamped.

        ``lengths`` (B,) makes each padded sequence's output equal to its output alone.
        """
        normalised = (mel - self.mel_mean) / self.mel_std.clamp_min(MIN_MEL_STD)
        return self.net(normalised, lengths)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        loss = target_loss(self._targets, self(batch["mel"], batch["lengths"]), batch["au"], batch["mask"])
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch["mel"].shape[0])
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: Mapping[str, Any]) -> None:
        """Log the loss (pooled over valid frames) and score clamped predictions, as inference outputs."""
        pred, mask = self(batch["mel"], batch["lengths"]), batch["mask"]
        loss = target_loss(self._targets, pred, batch["au"], mask)
        self.log(
            f"{stage}/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=max(int(mask.sum()), 1)
        )
        self._metrics[stage].update(self.finalise(pred), batch["au"], mask)

    def on_validation_epoch_start(self) -> None:
        self._start_metrics("val")

    def on_validation_epoch_end(self) -> None:
        self._finish_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._start_metrics("test")

    def on_test_epoch_end(self) -> None:
        self._finish_metrics("test")

    def _start_metrics(self, stage: str) -> None:
        """A fresh metric per epoch, so its mean-AU baseline is always the current ``au_mean``."""
        mean_au = self.au_mean if self.has_stats else None
        labels = self._targets.labels
        self._metrics[stage] = AUMetrics(self._targets.size, mean_au=mean_au, labels=labels).to(self.device)

    def _finish_metrics(self, stage: str) -> None:
        report = self._metrics.pop(stage).compute()  # synced over all DDP ranks already
        self.last_report[stage] = report
        self.log_dict(report.as_flat_dict(stage, per_au=self.hparams.log_per_au), sync_dist=False)

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        """Per utterance ``{"key", "au": float32 (length, num_aus) on CPU}``, mapped by :meth:`finalise`.

        ``lengths`` keep each utterance's AUs independent of the padding of its batch.
        """
        aus = self.finalise(self(batch["mel"], batch["lengths"])).float().cpu()
        return [
            {"key": key, "au": aus[row, :length]}
            for row, (key, length) in enumerate(zip(batch["keys"], batch["lengths"].tolist(), strict=True))
        ]

    # --- optimisation -------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        return lr_schedule(optimizer, hp.scheduler, hp.warmup_steps, self.trainer)


def load_cause_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> CAUSERegressor:
    """Rebuild a ``CAUSERegressor`` (in eval mode) from a checkpoint, unpickling only plain data.

    See :func:`cause_pl.models.checkpoints.load_module`; frontend and statistics come with the weights.
    """
    return load_module(CAUSERegressor, path, map_location)
