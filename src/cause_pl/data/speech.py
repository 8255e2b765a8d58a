"""``SpeechAUDataModule``: ``speech_au`` shards -> batches of log-mel frames and AU intensities.

Every batch is a dict (the CAUSE model relies on exactly this):

- ``mel``: float32 ``(B, T, n_mels)``, raw log-mel as stored (not normalised: the model normalises
  with the statistics it stores, :attr:`SpeechAUDataModule.mel_mean` / ``mel_std``);
- ``au``: float32 ``(B, T, 17)`` on the 0..5 scale;
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
from functools import partial
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cause_pl.au import NUM_AUS
from cause_pl.audio import MelConfig
from cause_pl.data.plumbing import EvalStream, Sample, TrainStream, make_loader, pad_collate
from cause_pl.shards import SPEECH_AU, DatasetIndex, ShardError, decode_npy

SEQUENCE_FIELDS = ("mel", "au", "mask")
STORED_FILES = ("mel.npy", "au.npy", "valid.npy")
STAGE_SPLITS = {"fit": ("train",), "validate": ("val",), "test": ("test",), "predict": ("test",)}
"""Splits ``setup(stage)`` checks exist; ``val`` for ``fit`` is checked when Lightning asks for it."""


def decode_utterance(sample: Sample, n_mels: int) -> Sample:
    """Raw ``speech_au`` sample -> ``key``, ``mel`` (F, n_mels) float32, ``au`` (F, 17) float32, ``mask`` (F,) bool."""
    where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__')}"
    missing = [name for name in STORED_FILES if name not in sample]
    if missing:
        raise ShardError(f"{where}: missing {missing}")
    mel = decode_npy(sample["mel.npy"]).astype(np.float32)
    au = decode_npy(sample["au.npy"]).astype(np.float32)
    valid = decode_npy(sample["valid.npy"]).astype(bool)
    frames = len(mel)
    if frames < 1 or mel.shape != (frames, n_mels) or au.shape != (frames, NUM_AUS) or valid.shape != (frames,):
        raise ShardError(
            f"{where}: shapes mel {mel.shape}, au {au.shape}, valid {valid.shape}; "
            f"expected (F, {n_mels}), (F, {NUM_AUS}), (F,) with F >= 1"
        )
    return {"key": sample["__key__"], "mel": mel, "au": au, "mask": valid}


def random_crop(sample: Sample, rng: random.Random, frames: int) -> Sample:
    """``frames`` consecutive frames at a random offset; a shorter utterance is returned whole."""
    length = len(sample["mel"])
    if length <= frames:
        return sample
    start = rng.randint(0, length - frames)
    return {**sample, **{name: sample[name][start : start + frames] for name in SEQUENCE_FIELDS}}


def _at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"SpeechAUDataModule {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _frontend_argument(frontend: dict) -> MelConfig:
    try:
        return MelConfig.from_dict(frontend)
    except (TypeError, ValueError) as error:
        raise ValueError(f"SpeechAUDataModule frontend={frontend!r} is not a valid MelConfig: {error}") from error


class SpeechAUDataModule(pl.LightningDataModule):
    """Train/val/test/predict dataloaders over a ``speech_au`` shard directory (``predict`` reads ``test``).

    ``train_samples_per_epoch`` counts samples over all ranks (default: the train split's size); see
    :func:`cause_pl.data.plumbing.batches_per_worker` for how it becomes whole batches. ``frontend``
    (e.g. from a checkpoint) must equal the shards' frontend; ``setup()`` checks. Rank and world size
    come from the trainer in ``setup()`` (0 and 1 without one); :meth:`distribute` sets them directly.
    """

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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root = str(root)
        self.batch_size = _at_least("batch_size", batch_size, 1)
        self.crop_frames = _at_least("crop_frames", crop_frames, 1)
        if train_samples_per_epoch is not None:
            _at_least("train_samples_per_epoch", train_samples_per_epoch, 1)
        self.train_samples_per_epoch = train_samples_per_epoch
        self.num_workers = _at_least("num_workers", num_workers, 0)
        self.shuffle_buffer = _at_least("shuffle_buffer", shuffle_buffer, 1)
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.eval_batch_size = _at_least("eval_batch_size", eval_batch_size, 1)
        self.frontend = None if frontend is None else _frontend_argument(frontend)
        self.strict = bool(strict)
        self.seed = int(seed)
        self.rank, self.world_size = 0, 1
        self._index: DatasetIndex | None = None

    # What the model reads.

    @property
    def index(self) -> DatasetIndex:
        """The shards' index.json (loaded once; must be a ``speech_au`` directory)."""
        if self._index is None:
            index = DatasetIndex.load(self.root)
            if index.kind != SPEECH_AU:
                raise ShardError(
                    f"{self.root}: holds {index.kind!r} shards; SpeechAUDataModule needs {SPEECH_AU!r} shards"
                )
            self._index = index
        return self._index

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
        """Per-AU mean intensity over valid training frames, float32 ``(17,)``."""
        return torch.from_numpy(self.index.array("au_mean"))

    @property
    def train_batches_per_epoch(self) -> int:
        """Full training batches this rank yields per epoch (equal on every rank)."""
        return len(self._train_stream())

    # Rank, checks and dataloaders.

    def distribute(self, rank: int, world_size: int) -> None:
        """Read as rank ``rank`` of ``world_size``; ``setup()`` calls this with the trainer's values."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.rank, self.world_size = rank, world_size

    def setup(self, stage: str | None = None) -> None:
        """Take rank and world size from the trainer, check the frontend and the splits ``stage`` needs."""
        if self.trainer is not None:
            self.distribute(self.trainer.global_rank, self.trainer.world_size)
        self.check_frontend()
        for split in STAGE_SPLITS.get(stage, ()):
            self.index.shard_paths(split)  # raises naming the available splits

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

    def train_dataloader(self) -> DataLoader:
        return make_loader(self._train_stream())

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def _train_stream(self) -> TrainStream:
        return TrainStream(
            self.index.shard_paths("train"),
            rank=self.rank,
            world_size=self.world_size,
            num_workers=self.num_workers,
            batch_size=self.batch_size,
            samples_per_epoch=self.train_samples_per_epoch or self.index.num_samples("train"),
            decode=partial(decode_utterance, n_mels=self.frontend_config.n_mels),
            augment=partial(random_crop, frames=self.crop_frames),
            collate=partial(pad_collate, sequence_fields=SEQUENCE_FIELDS, pad_to=self.crop_frames),
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            strict=self.strict,
        )

    def eval_dataloader(self, split: str) -> DataLoader:
        """Whole utterances of ``split``, each exactly once over all ranks and workers."""
        return make_loader(
            EvalStream(
                self.index.shard_paths(split),
                rank=self.rank,
                world_size=self.world_size,
                num_workers=self.num_workers,
                batch_size=self.eval_batch_size,
                decode=partial(decode_utterance, n_mels=self.frontend_config.n_mels),
                collate=partial(pad_collate, sequence_fields=SEQUENCE_FIELDS),
                strict=self.strict,
                name=f"{split} split of {self.root}",
            )
        )
