"""``ShardDataModule``: what every shard-backed data module shares (index, ranks, loaders).

A subclass names its shard ``kind`` and supplies how samples are decoded, augmented for training
and collated; this base turns that into DDP-correct train/val/test/predict dataloaders with the
plumbing of :mod:`cause_pl.data.reading`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from cause_pl.data.loaders import make_loader
from cause_pl.data.monitor import SkippedSamplesMonitor
from cause_pl.data.reading import Sample
from cause_pl.data.streams import EvalStream, TrainStream
from cause_pl.shards.index import DatasetIndex
from cause_pl.shards.schema import ShardError
from cause_pl.shards.urls import DEFAULT_PIPE_TIMEOUT, check_timeout, check_url_template, shard_url

STAGE_SPLITS: dict[str, tuple[str, ...]] = {
    "fit": ("train",),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
"""Splits ``setup(stage)`` checks exist; ``val`` for ``fit`` is checked when Lightning asks for it."""


def at_least(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum``, else a ValueError naming ``owner`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner} {name} must be an integer >= {minimum}, got {value!r}")
    return value


class ShardDataModule(pl.LightningDataModule):
    """Dataloaders over a shard directory of one ``kind``; ``predict`` reads ``test``.

    ``train_samples_per_epoch`` counts samples over all ranks (default: the train split's size); see
    :func:`cause_pl.data.streams.batches_per_worker` for how it becomes whole batches. Rank and
    world size come from the trainer in ``setup()`` (0 and 1 without one); :meth:`distribute` sets
    them directly.

    index.json is always read from ``root``; the shards themselves are read from ``root`` too, or
    from ``shard_url``, a template in which ``{name}`` stands for each shard's file name: a path
    (``/scratch/vox/{name}``) or a command whose stdout is the shard
    (``pipe:aws s3 cp s3://bucket/vox/{name} -``); see :mod:`cause_pl.shards.urls`. A ``pipe:``
    command that sends nothing for ``pipe_timeout`` seconds while it is read is killed and counts as
    a read error (None: wait forever).

    ``eval_num_workers`` (default: ``num_workers``) is the evaluation loaders' worker count, lowered
    with a warning when the split has too few shards for it. Skipped (unreadable) samples are summed
    over workers and ranks and logged per epoch by :class:`~cause_pl.data.monitor.SkippedSamplesMonitor`,
    which ``setup()`` adds to the trainer's callbacks.
    """

    kind: str
    min_batch_size: int = 1

    def __init__(
        self,
        root: str,
        batch_size: int,
        num_workers: int,
        train_samples_per_epoch: int | None,
        shuffle_buffer: int,
        eval_batch_size: int | None,
        strict: bool,
        seed: int,
        shard_url: str | None = None,
        eval_num_workers: int | None = None,
        pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.root = str(root)
        self.batch_size = at_least(owner, "batch_size", batch_size, self.min_batch_size)
        self.num_workers = at_least(owner, "num_workers", num_workers, 0)
        eval_num_workers = num_workers if eval_num_workers is None else eval_num_workers
        self.eval_num_workers = at_least(owner, "eval_num_workers", eval_num_workers, 0)
        self.pipe_timeout = check_timeout(pipe_timeout)
        if train_samples_per_epoch is not None:
            at_least(owner, "train_samples_per_epoch", train_samples_per_epoch, 1)
        self.train_samples_per_epoch = train_samples_per_epoch
        self.shuffle_buffer = at_least(owner, "shuffle_buffer", shuffle_buffer, 1)
        eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.eval_batch_size = at_least(owner, "eval_batch_size", eval_batch_size, 1)
        self.strict = bool(strict)
        self.seed = int(seed)
        self.shard_url = None if shard_url is None else check_url_template(shard_url)
        self.rank, self.world_size = 0, 1
        self._index: DatasetIndex | None = None
        self._streams: dict[str, TrainStream | EvalStream] = {}

    # What subclasses supply: picklable callables (module-level functions or partials of them),
    # since DataLoader workers may be spawned processes; bound methods would drag the trainer along.

    def decoder(self) -> Callable[[Sample], Sample]:
        """Raw shard sample -> the arrays one batch row is made of."""
        raise NotImplementedError

    def train_augmenter(self) -> Callable[[Sample, Any], Sample] | None:
        """Training-only randomness (crops, flips, targets) given the stream's RNG; default none."""
        return None

    def train_collator(self) -> Callable[[list[Sample]], Sample]:
        raise NotImplementedError

    def eval_collator(self) -> Callable[[list[Sample]], Sample]:
        raise NotImplementedError

    # Shared.

    @property
    def index(self) -> DatasetIndex:
        """The shards' index.json (loaded once; must hold shards of this module's ``kind``)."""
        if self._index is None:
            index = DatasetIndex.load(self.root)
            if index.kind != self.kind:
                raise ShardError(
                    f"{self.root}: holds {index.kind!r} shards; {type(self).__name__} needs {self.kind!r} shards"
                )
            self._index = index
        return self._index

    @property
    def train_batches_per_epoch(self) -> int:
        """Full training batches this rank yields per epoch (equal on every rank)."""
        return len(self._train_stream())

    def shard_urls(self, split: str) -> list[str]:
        """Where each shard of ``split`` is read from, in index order (ranks and workers split this list)."""
        return [shard_url(self.shard_url, self.root, name) for name in self.index.shard_names(split)]

    def distribute(self, rank: int, world_size: int) -> None:
        """Read as rank ``rank`` of ``world_size``; ``setup()`` calls this with the trainer's values."""
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.rank, self.world_size = rank, world_size

    def setup(self, stage: str | None = None) -> None:
        """Take rank and world size from the trainer, check the shard kind and the splits ``stage`` needs."""
        if self.trainer is not None:
            self.distribute(self.trainer.global_rank, self.trainer.world_size)
            callbacks = getattr(self.trainer, "callbacks", None)
            if isinstance(callbacks, list) and not any(isinstance(c, SkippedSamplesMonitor) for c in callbacks):
                callbacks.append(SkippedSamplesMonitor())
        for split in STAGE_SPLITS.get(stage, ()) if stage is not None else ():
            self.index.shard_names(split)  # raises naming the available splits

    def train_dataloader(self) -> DataLoader:
        """A resumable loader (:class:`~cause_pl.data.loaders.TrainLoader`): checkpoints continue mid-epoch exactly."""
        stream = self._train_stream()
        self._streams["train"] = stream
        return make_loader(stream, self._fit_position)

    def skipped_samples(self, split: str) -> int:
        """Samples this rank skipped as unreadable in the current or last pass over ``split`` (0 if not read)."""
        stream = self._streams.get(split)
        return 0 if stream is None else stream.skipped_samples

    def _fit_position(self) -> tuple[int, int, int] | None:
        """``(epoch, batches processed in it, batches per epoch)`` while a trainer fits, else None."""
        trainer = self.trainer
        try:
            if trainer is None or trainer.state.fn != TrainerFn.FITTING:
                return None
            progress: Any = trainer.fit_loop.epoch_loop.batch_progress.current  # a _ProcessedTracker
            return int(trainer.current_epoch), int(progress.processed), int(trainer.num_training_batches)
        except (AttributeError, TypeError, OverflowError):
            return None

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def _train_stream(self) -> TrainStream:
        return TrainStream(
            self.shard_urls("train"),
            rank=self.rank,
            world_size=self.world_size,
            num_workers=self.num_workers,
            batch_size=self.batch_size,
            samples_per_epoch=self.train_samples_per_epoch or self.index.num_samples("train"),
            decode=self.decoder(),
            augment=self.train_augmenter(),
            collate=self.train_collator(),
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            strict=self.strict,
            pipe_timeout=self.pipe_timeout,
        )

    def eval_dataloader(self, split: str) -> DataLoader:
        """Samples of ``split`` in evaluation form, each exactly once over all ranks and workers.

        ``eval_num_workers`` is lowered (with a warning) to what the split's shards allow: every
        reader needs one shard, and a rank gets ``shards // world_size`` of them at least.
        """
        urls = self.shard_urls(split)
        workers = self.eval_num_workers
        allowed = len(urls) // self.world_size
        if workers > 1 and workers > allowed >= 1:
            warnings.warn(
                f"{split} split of {self.root}: {len(urls)} shard(s) over {self.world_size} rank(s) allow at most "
                f"{allowed} DataLoader worker(s) per rank for evaluation (each reads whole shards); using {allowed} "
                f"instead of eval_num_workers={workers}. Re-shard with a smaller --shard_size for more.",
                stacklevel=2,
            )
            workers = allowed
        stream = EvalStream(
            urls,
            rank=self.rank,
            world_size=self.world_size,
            num_workers=workers,
            batch_size=self.eval_batch_size,
            decode=self.decoder(),
            collate=self.eval_collator(),
            strict=self.strict,
            name=f"{split} split of {self.root}",
            pipe_timeout=self.pipe_timeout,
        )
        self._streams[split] = stream
        return make_loader(stream)
