"""``FaceAUDataModule``: ``faces`` shards -> batches of face images, their AUs and target AUs (GANimation).

Every batch is a dict (the GANimation model relies on exactly this):

- ``image``: float32 ``(B, 3, H, W)`` in [-1, 1] (resized to ``image_size`` when it is given);
- ``au``: float32 ``(B, 17)``, the image's own AU intensities divided by 5;
- ``target_au``: float32 ``(B, 17)``, the AUs the generator should give the image, on the same scale;
- ``keys``: list of the image keys.

Training targets (docs/design.md, "GANimation") are the AUs of *another* training image plus
U(-``target_noise``, ``target_noise``) noise, drawn from the batch itself: the batch's images are put
in a random order and each takes the AUs of the next one in that order, cyclically. That is a random
permutation without fixed points (a derangement; a single cycle), so no image is asked to keep its
own AUs. The random order and the noise are drawn per sample by :func:`draw_training_randomness` with
the stream's seeded RNG (the collate function gets none), so they differ per rank, worker and epoch
and are reproducible under ``seed_everything``. Training images are flipped left-right with
probability 1/2 when ``flip``; AU intensities have no side, so the labels stay.

Validation, test and predict batches are never flipped and their targets are deterministic, without
noise: each image takes the AUs of the previous image of its batch (a roll by one), so sample grids
and metrics compare across epochs. A batch of one image (possible as the last batch of a worker)
gets its own AUs back, which makes that image a reconstruction.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from PIL import Image

from cause_pl.data.base import ShardDataModule, at_least
from cause_pl.data.reading import Sample
from cause_pl.media.image import image_to_array
from cause_pl.shards.schema import FACES, ShardError, decode_npy
from cause_pl.shards.urls import DEFAULT_PIPE_TIMEOUT
from cause_pl.targets import DEFAULT_TARGETS, TargetSpec

STORED_FILES = ("jpg", "au.npy")


def decode_face(sample: Sample, image_size: int | None, targets: TargetSpec = DEFAULT_TARGETS) -> Sample:
    """Raw ``faces`` sample -> ``key``, ``image`` (3, H, W) float32 in [-1, 1], ``au`` (17,) float32 / 5.

    Faces labelled with other targets (index.json's ``targets``) give ``au`` (K,) divided by the
    targets' upper bound, so the conditioning is on a 0..1 scale whatever the labels.
    """
    where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__')}"
    missing = [name for name in STORED_FILES if name not in sample]
    if missing:
        raise ShardError(f"{where}: missing {missing}")
    au = decode_npy(sample["au.npy"]).astype(np.float32)
    if au.shape != (targets.size,):
        raise ShardError(f"{where}: au shape {au.shape}, expected ({targets.size},)")
    if not np.isfinite(au).all():
        raise ShardError(f"{where}: au holds NaN or infinite values")
    with Image.open(io.BytesIO(sample["jpg"])) as opened:
        image = opened.convert("RGB")
    if image_size is not None and image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return {"key": sample["__key__"], "image": image_to_array(image), "au": au / np.float32(targets.high)}


def draw_training_randomness(sample: Sample, rng: random.Random, flip: bool, target_noise: float) -> Sample:
    """Flip the image left-right with probability 1/2 (when ``flip``); draw the sample's target order and noise."""
    image = sample["image"][:, :, ::-1].copy() if flip and rng.random() < 0.5 else sample["image"]
    noise = np.array([rng.uniform(-target_noise, target_noise) for _ in range(len(sample["au"]))], dtype=np.float32)
    return {**sample, "image": image, "target_order": rng.random(), "target_noise": noise}


def _stack(samples: list[Sample]) -> Sample:
    sizes = {sample["image"].shape for sample in samples}
    if len(sizes) > 1:
        raise ShardError(
            f"face images of different sizes {sorted(sizes)} in one batch; set FaceAUDataModule(image_size=...)"
        )
    return {
        "image": torch.from_numpy(np.stack([sample["image"] for sample in samples])),
        "au": torch.from_numpy(np.stack([sample["au"] for sample in samples])),
        "keys": [sample["key"] for sample in samples],
    }


def collate_training(samples: list[Sample]) -> Sample:
    """Batch training samples; ``target_au`` = the next image's AUs in the drawn random order, plus noise."""
    batch = _stack(samples)
    order = sorted(range(len(samples)), key=lambda row: samples[row]["target_order"])
    donor = [0] * len(samples)
    for position, row in enumerate(order):
        donor[row] = order[(position + 1) % len(order)]
    noise = torch.from_numpy(np.stack([sample["target_noise"] for sample in samples]))
    batch["target_au"] = batch["au"][donor] + noise
    return batch


def collate_evaluation(samples: list[Sample]) -> Sample:
    """Batch evaluation samples; ``target_au`` = the previous image's AUs (deterministic, no noise)."""
    batch = _stack(samples)
    batch["target_au"] = torch.roll(batch["au"], shifts=1, dims=0)
    return batch


class FaceAUDataModule(ShardDataModule):
    """Train/val/test/predict dataloaders over a ``faces`` shard directory (``predict`` reads ``test``).

    ``batch_size`` must be >= 2 (each training image takes another image's AUs from its batch).
    ``image_size`` resizes images whose size differs (default: as stored). See
    :class:`~cause_pl.data.base.ShardDataModule` for epochs, ranks and workers, and for ``shard_url``
    (reading the shards from a shared filesystem or object storage, e.g. ``pipe:aws s3 cp s3://b/vox/{name} -``).
    """

    kind = FACES
    min_batch_size = 2

    def __init__(
        self,
        root: str,
        batch_size: int = 25,
        image_size: int | None = None,
        num_workers: int = 2,
        train_samples_per_epoch: int | None = None,
        shuffle_buffer: int = 1000,
        eval_batch_size: int | None = None,
        flip: bool = True,
        target_noise: float = 0.1,
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
        self.image_size = None if image_size is None else at_least("FaceAUDataModule", "image_size", image_size, 1)
        if not 0 <= target_noise < 1:
            raise ValueError(f"FaceAUDataModule target_noise must be in [0, 1) (AUs / 5 scale), got {target_noise!r}")
        self.flip = bool(flip)
        self.target_noise = float(target_noise)

    @property
    def targets(self) -> TargetSpec:
        """What the faces are labelled with (index.json's ``targets``; the 17 AUs if it names none)."""
        return self.index.targets

    def decoder(self) -> Callable[[Sample], Sample]:
        return partial(decode_face, image_size=self.image_size, targets=self.targets)

    def train_augmenter(self) -> Callable[[Sample, random.Random], Sample]:
        return partial(draw_training_randomness, flip=self.flip, target_noise=self.target_noise)

    def train_collator(self) -> Callable[[list[Sample]], Sample]:
        return collate_training

    def eval_collator(self) -> Callable[[list[Sample]], Sample]:
        return collate_evaluation
