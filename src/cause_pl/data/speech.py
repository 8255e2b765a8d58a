"""``SpeechAUDataModule``: ``speech_au`` shards -> batches of log-mel frames and AU intensities.

Every batch is a dict (the CAUSE model relies on exactly this):

- ``mel``: float32 ``(B, T, n_mels)``, raw log-mel as stored (not normalised: the model normalises
  with the statistics it stores, :attr:`SpeechAUDataModule.mel_mean` / ``mel_std``);
- ``au``: float32 ``(B, T, 17)`` on the 0..5 scale, or ``(B, T, K)`` of the targets the shards'
  index.json names (:attr:`SpeechAUDataModule.targets`, :mod:`cause_pl.targets`);
- ``mask``: bool ``(B, T)``, True where the AU label is valid and the frame is not padding;
- ``lengths``: int64 ``(B,)``, frames before padding;
- ``keys``: list of the utterance keys.

Training batches are random crops of exactly ``crop_frames`` frames. An utterance shorter than the
crop is kept whole and padded (mask False), not skipped: VoxCeleb2 utterances are >= 4 s (100 frames),
so with the default crop few are short and dropping them would bias training towards long ones.
Validation, test and predict batches hold whole utterances in stream order, padded to the longest.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from cause_pl.au import NUM_AUS
from cause_pl.data.base import ShardDataModule, at_least
from cause_pl.data.collate import pad_collate
from cause_pl.data.reading import Sample
from cause_pl.features.mel import MelConfig
from cause_pl.shards.schema import SPEECH_AU, ShardError, decode_npy
from cause_pl.shards.urls import DEFAULT_PIPE_TIMEOUT
from cause_pl.targets import TargetSpec

SEQUENCE_FIELDS = ("mel", "au", "mask")
BATCH_DTYPES = {"mel": torch.float32, "au": torch.float32, "mask": torch.bool}
STORED_FILES = ("mel.npy", "au.npy", "valid.npy")


def decode_utterance(sample: Sample, n_mels: int, num_targets: int = NUM_AUS) -> Sample:
    """Raw ``speech_au`` sample -> ``key``, ``mel`` (F, n_mels), ``au`` (F, num_targets), ``mask`` (F,) bool.

    ``mel`` and ``au`` are read-only views of the stored arrays (float16): the collate functions
    convert them to float32 once per batch, after cropping (:data:`BATCH_DTYPES`).
    """
    where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__')}"
    missing = [name for name in STORED_FILES if name not in sample]
    if missing:
        raise ShardError(f"{where}: missing {missing}")
    mel = decode_npy(sample["mel.npy"])
    au = decode_npy(sample["au.npy"])
    valid = decode_npy(sample["valid.npy"]).astype(bool, copy=False)
    frames = len(mel)
    if frames < 1 or mel.shape != (frames, n_mels) or au.shape != (frames, num_targets) or valid.shape != (frames,):
        raise ShardError(
            f"{where}: shapes mel {mel.shape}, au {au.shape}, valid {valid.shape}; "
            f"expected (F, {n_mels}), (F, {num_targets}), (F,) with F >= 1"
        )
    if not (np.isfinite(mel).all() and np.isfinite(au).all()):  # NaN would reach losses, metrics and tables
        raise ShardError(f"{where}: mel or au holds NaN or infinite values")
    return {"key": sample["__key__"], "mel": mel, "au": au, "mask": valid}


def random_crop(sample: Sample, rng: random.Random, frames: int) -> Sample:
    """``frames`` consecutive frames at a random offset; a shorter utterance is returned whole."""
    length = len(sample["mel"])
    if length <= frames:
        return sample
    start = rng.randint(0, length - frames)
    return {**sample, **{name: sample[name][start : start + frames] for name in SEQUENCE_FIELDS}}


def _frontend_argument(frontend: dict) -> MelConfig:
    try:
        return MelConfig.from_dict(frontend)
    except (TypeError, ValueError) as error:
        raise ValueError(f"SpeechAUDataModule frontend={frontend!r} is not a valid MelConfig: {error}") from error


class SpeechAUDataModule(ShardDataModule):
    """Train/val/test/predict dataloaders over a ``speech_au`` shard directory (``predict`` reads ``test``).

    ``frontend`` (e.g. from a checkpoint) must equal the shards' frontend; ``setup()`` checks. See
    :class:`~cause_pl.data.base.ShardDataModule` for epochs, ranks and workers, and for ``shard_url``
    (reading the shards from a shared filesystem or object storage, e.g. ``pipe:aws s3 cp s3://b/vox/{name} -``).
    """

    kind = SPEECH_AU

    def __init__(
        self,
        root: str,
        batch_size: int = 32,
        crop_frames: int = 128,
        train_samples_per_epoch: int | None = None,
        num_workers: int = 2,
        shuffle_buffer: int = 1000,
        eval_batch_size: int | None = None,
        frontend: dict | None = None,
        strict: bool = False,
        seed: int = 0,
        shard_url: str | None = None,
        eval_num_workers: int | None = None,
        pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT,
    ) -> None:
        super().__init__(
            root,
            batch_size,
            num_workers,
            train_samples_per_epoch,
            shuffle_buffer,
            eval_batch_size,
            strict,
            seed,
            shard_url,
            eval_num_workers,
            pipe_timeout,
        )
        self.save_hyperparameters()
        self.crop_frames = at_least("SpeechAUDataModule", "crop_frames", crop_frames, 1)
        self.frontend = None if frontend is None else _frontend_argument(frontend)

    # What the model reads.

    @property
    def frontend_config(self) -> MelConfig:
        """The log-mel frontend the shards were made with."""
        if not self.index.frontend:
            raise ShardError(f"{self.root}/index.json: no frontend parameters")
        return MelConfig.from_dict(self.index.frontend)

    @property
    def mel_mean(self) -> torch.Tensor:
        """Per-band log-mel mean over the training frames, float32 ``(n_mels,)``."""
        return torch.from_numpy(self.index.array("mel_mean"))

    @property
    def mel_std(self) -> torch.Tensor:
        """Per-band log-mel standard deviation, float32 ``(n_mels,)``."""
        return torch.from_numpy(self.index.array("mel_std"))

    @property
    def au_mean(self) -> torch.Tensor:
        """Per-target mean over valid training frames (AU intensities by default), float32 ``(K,)``."""
        return torch.from_numpy(self.index.array("au_mean"))

    @property
    def targets(self) -> TargetSpec:
        """What ``au`` holds per frame (index.json's ``targets``; the 17 AUs if it names none)."""
        return self.index.targets

    def setup(self, stage: str | None = None) -> None:
        """The base checks, plus: the shards' frontend equals a given ``frontend``."""
        super().setup(stage)
        self.check_frontend()

    def check_frontend(self) -> None:
        """Raise if a ``frontend`` was given and differs from the one the shards were made with."""
        if self.frontend is None or self.frontend == self.frontend_config:
            return
        wanted, found = self.frontend.to_dict(), self.frontend_config.to_dict()
        differing = {name: (wanted[name], found[name]) for name in wanted if wanted[name] != found[name]}
        raise ShardError(
            f"frontend mismatch: SpeechAUDataModule(frontend=...) (e.g. from a checkpoint) is {wanted}, but the "
            f"shards in {self.root} were made with {found}; differing (given, shards): {differing}"
        )

    def decoder(self) -> Callable[[Sample], Sample]:
        return partial(decode_utterance, n_mels=self.frontend_config.n_mels, num_targets=self.targets.size)

    def train_augmenter(self) -> Callable[[Sample, random.Random], Sample]:
        return partial(random_crop, frames=self.crop_frames)

    def train_collator(self) -> Callable[[list[Sample]], Sample]:
        return partial(pad_collate, sequence_fields=SEQUENCE_FIELDS, pad_to=self.crop_frames, dtypes=BATCH_DTYPES)

    def eval_collator(self) -> Callable[[list[Sample]], Sample]:
        return partial(pad_collate, sequence_fields=SEQUENCE_FIELDS, dtypes=BATCH_DTYPES)
