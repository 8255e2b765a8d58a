"""The two sample streams under every data module: shard splitting by rank and worker, training and evaluation.

Nothing here knows what a sample holds: a data module supplies ``decode`` (raw tar sample -> arrays),
optionally ``augment`` (training only) and ``collate`` (list of samples -> batch).

Why not ``wds.WebDataset(..., nodesplitter=wds.split_by_node)`` (docs/design.md, "Distributed data
loading"): that reads the rank from ``torch.distributed`` inside DataLoader workers, which is wrong
under spawn/forkserver workers (every rank silently reads every shard). Here the rank and world size
are passed in explicitly, and only the worker split uses ``torch.utils.data.get_worker_info()``.

Batches are made inside the workers and the DataLoader runs with ``batch_size=None``, so a stream's
``len()`` is the loader's ``len()``, which Lightning uses for the progress bar.

Training (:class:`TrainStream`): every worker of every rank draws shards with replacement from the
whole split, passes samples through a shuffle buffer, decodes, augments and batches them. The stream
never runs dry, so every batch is full (drop-last semantics), and each worker stops after exactly
``batches_per_worker`` batches: a rank yields ``batches_per_worker * max(num_workers, 1)`` batches
per epoch, the same on every rank, which DDP needs (unequal batch counts hang it). See
:func:`batches_per_worker` for the rule. Its loader (:class:`cause_pl.data.loaders.TrainLoader`)
is resumable mid-epoch (the state is tracked in the main process; resumed workers fast-forward),
see docs/design.md, "Distributed data loading".

Evaluation (:class:`EvalStream`): no resampling. Shards are dealt round-robin to ranks, then to the
workers of a rank, so every sample is read exactly once; batches are cut in stream order, the last
one of each worker may be smaller, and they are padded to their longest sample.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from cause_pl.data.collate import Collate
from cause_pl.data.reading import Decode, ReadErrors, Sample, decoded, read_shard
from cause_pl.shards.schema import ShardError
from cause_pl.shards.urls import DEFAULT_PIPE_TIMEOUT

Augment = Callable[[Sample, random.Random], Sample]


def split_shards(urls: Sequence[str], rank: int, world_size: int) -> list[str]:
    """Rank ``rank``'s shards: every ``world_size``-th one, starting at ``rank`` (round-robin)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if len(urls) < world_size:
        raise ShardError(
            f"{len(urls)} shard(s) cannot be split over {world_size} ranks (each rank needs at least one); "
            "re-shard the data with a smaller --shard_size or use fewer ranks"
        )
    return list(urls[rank::world_size])


def worker_slot() -> tuple[int, int]:
    """``(worker id, number of workers)`` of the current DataLoader worker; ``(0, 1)`` outside workers."""
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def batches_per_worker(samples_per_epoch: int, batch_size: int, world_size: int, num_workers: int) -> int:
    """Full batches each worker yields per epoch: ``samples_per_epoch // (world_size * workers * batch_size)``.

    ``workers`` is ``max(num_workers, 1)`` (``num_workers=0`` reads in the main process). The
    remainder of ``samples_per_epoch`` is dropped, so no rank or worker ever yields a partial batch.
    """
    readers = world_size * max(num_workers, 1)
    count = samples_per_epoch // (readers * batch_size)
    if count < 1:
        raise ValueError(
            f"a training epoch of {samples_per_epoch} samples gives less than one batch of {batch_size} to each of "
            f"{world_size} rank(s) x {max(num_workers, 1)} worker(s); lower batch_size or num_workers, "
            "or raise train_samples_per_epoch"
        )
    return count


def epoch_seed(seed: int, base: int, rank: int, worker: int, epoch: int) -> int:
    """Seed for one worker's pass over the data, different per rank, worker and epoch.

    ``seed`` is the data module's, ``base`` one draw from torch's RNG when the loader first iterates (so
    ``seed_everything`` changes the data order too), ``epoch`` the epoch number. Nothing depends on
    torch's RNG inside the workers, so a resumed run can rebuild any epoch's seeds from its checkpoint.
    """
    return int(np.random.SeedSequence([seed, base, rank, worker, epoch]).generate_state(1, np.uint64)[0])


def resume_position(consumed: int, worker: int, workers: int) -> tuple[int, int]:
    """``(logical worker, batches to skip)`` for DataLoader worker ``worker`` after ``consumed`` batches of an epoch.

    The DataLoader takes batches from its workers round-robin, starting at worker 0, so after
    ``consumed = q * workers + r`` batches, workers ``< r`` have given ``q + 1`` and the others ``q``.
    A resumed loader starts at worker 0 again, so its workers are rotated by ``r``: worker ``w`` plays
    the part of worker ``(w + r) % workers`` (its seed, its skip), and batches come in the original order.
    """
    shift = consumed % workers
    logical = (worker + shift) % workers
    return logical, consumed // workers + (1 if logical < shift else 0)


class _Stream(IterableDataset):
    """What both streams share: shards, the planned worker count, decoding, batching, read errors."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        num_workers: int,
        batch_size: int,
        decode: Decode,
        collate: Collate,
        strict: bool,
        pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT,
    ) -> None:
        super().__init__()
        if not urls:
            raise ShardError("no shards to read")
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.urls = list(urls)
        self.num_workers = num_workers
        self.batch_size = batch_size
        self.decode = decode
        self.collate = collate
        self.pipe_timeout = pipe_timeout
        self.skipped = torch.zeros(max(num_workers, 1), dtype=torch.int64).share_memory_()
        """Read errors of the current epoch, one slot per worker (shared memory: workers write, the main reads)."""
        self.damaged = torch.zeros(len(self.urls), dtype=torch.bool).share_memory_()
        """Which of ``urls`` gave read errors (shared memory, so workers report them to the main process)."""
        self.errors = ReadErrors(strict, tally=self.skipped, shards=self.urls, shard_flags=self.damaged)

    def _worker(self) -> int:
        """This worker's id, after checking the DataLoader runs the number of workers planned for."""
        worker, workers = worker_slot()
        if workers != max(self.num_workers, 1):
            raise RuntimeError(
                f"{type(self).__name__} was built for num_workers={self.num_workers} but is read by "
                f"{workers} worker(s); build it with the DataLoader's num_workers (use make_loader)"
            )
        self.skipped[worker] = 0
        self.errors.slot = worker
        return worker

    @property
    def bad_shards(self) -> list[str]:
        """The shards that gave read errors while this stream was read, by any worker."""
        flagged = {url for url, bad in zip(self.urls, self.damaged.tolist(), strict=True) if bad}
        return sorted(flagged | self.errors.bad_shards)

    @property
    def skipped_samples(self) -> int:
        """Samples (or unreadable shard remainders) skipped in the current or last epoch, over all workers."""
        return int(self.skipped.sum())


class TrainStream(_Stream):
    """Endless resampled shards -> shuffle buffer -> decode -> augment -> full batches; ``len(self)`` per epoch."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        rank: int,
        world_size: int,
        num_workers: int,
        batch_size: int,
        samples_per_epoch: int,
        decode: Decode,
        collate: Collate,
        augment: Augment | None = None,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        strict: bool = False,
        base: int | None = None,
        pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT,
    ) -> None:
        super().__init__(
            urls,
            num_workers=num_workers,
            batch_size=batch_size,
            decode=decode,
            collate=collate,
            strict=strict,
            pipe_timeout=pipe_timeout,
        )
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
        self.rank = rank
        self.batches_per_worker = batches_per_worker(samples_per_epoch, batch_size, world_size, num_workers)
        self.augment = augment
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.base = base
        """The epoch seeds' draw from torch's RNG (see :func:`epoch_seed`); None: drawn when iterated."""
        self.epoch = 0
        """Epoch number the next iteration reads (set by the ``TrainLoader``)."""
        self.resume_batches = 0
        """Batches of that epoch already consumed, skipped by the next iteration (set by the ``TrainLoader``)."""

    def __len__(self) -> int:
        """Batches one rank yields per epoch."""
        return self.batches_per_worker * max(self.num_workers, 1)

    def __iter__(self) -> Iterator[Any]:
        workers = max(self.num_workers, 1)
        logical, skip = resume_position(self.resume_batches, self._worker(), workers)
        base = int(torch.randint(0, 2**62, ()).item()) if self.base is None else self.base
        rng = random.Random(epoch_seed(self.seed, base, self.rank, logical, self.epoch))
        shuffled = wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(self._resampled(rng))
        samples = decoded(shuffled, self.decode, self.errors)
        if self.augment is not None:
            samples = (self.augment(sample, rng) for sample in samples)
        # Fast-forward after a resume: the skipped batches' samples are read, decoded and augmented
        # (the RNG draws and any read errors must be the same as the first time) but not collated.
        deque(islice(samples, skip * self.batch_size), maxlen=0)
        batches = wds.batched(self.batch_size, collation_fn=self.collate, partial=False)(samples)
        return islice(batches, self.batches_per_worker - skip)

    def _resampled(self, rng: random.Random) -> Iterator[Sample]:
        """Raw samples of shards drawn with replacement, endlessly."""
        while True:
            yield from read_shard(rng.choice(self.urls), self.errors, self.pipe_timeout)


class EvalStream(_Stream):
    """One rank's shards, dealt to its workers; every sample once, in padded batches of up to ``batch_size``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        rank: int,
        world_size: int,
        num_workers: int,
        batch_size: int,
        decode: Decode,
        collate: Collate,
        strict: bool = False,
        name: str = "evaluation",
        pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT,
    ) -> None:
        readers = world_size * max(num_workers, 1)
        if len(urls) < readers:
            raise ShardError(
                f"{name}: {len(urls)} shard(s) cannot be shared by {world_size} rank(s) x {max(num_workers, 1)} "
                f"DataLoader worker(s): evaluation reads every sample exactly once, so each of the {readers} "
                "readers needs at least one shard. Re-shard the data with a smaller --shard_size, or use "
                f"fewer workers (num_workers <= {max(len(urls) // world_size, 0)})"
            )
        super().__init__(
            split_shards(urls, rank, world_size),
            num_workers=num_workers,
            batch_size=batch_size,
            decode=decode,
            collate=collate,
            strict=strict,
            pipe_timeout=pipe_timeout,
        )

    def __iter__(self) -> Iterator[Any]:
        mine = self.urls[self._worker() :: max(self.num_workers, 1)]
        raw = chain.from_iterable(read_shard(url, self.errors, self.pipe_timeout) for url in mine)
        samples = decoded(raw, self.decode, self.errors)
        return wds.batched(self.batch_size, collation_fn=self.collate, partial=True)(samples)
