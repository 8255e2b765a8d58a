"""Reading samples from shard tar files, with damaged data skipped and counted (or raised in strict mode)."""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from cause_pl.shards.schema import ShardError
from cause_pl.shards.tar_reader import tar_samples
from cause_pl.shards.urls import DEFAULT_PIPE_TIMEOUT, open_shard

READ_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, OSError, EOFError, ValueError)
"""What a damaged shard or sample raises (``ShardError`` is a ``ValueError``); anything else is a bug."""


log = logging.getLogger(__name__)


Sample = dict[str, Any]


Decode = Callable[[Sample], Sample]


MAX_CONSECUTIVE_ERRORS = 1000
"""Skipping gives up after this many read errors in a row without one good sample: with every
shard broken, an endless resampled stream would otherwise spin forever instead of failing."""


class ReadErrors:
    """Unreadable shards and samples: skip and count (default), or raise at once when ``strict``.

    Counts are per process (each DataLoader worker holds its own copy); each bad shard is logged once
    per process. Even when skipping, :data:`MAX_CONSECUTIVE_ERRORS` errors in a row raise. With a
    ``tally`` (a shared-memory tensor, one slot per worker), each skipped error also adds one to
    ``tally[slot]``, which the main process reads (the stream sets ``slot`` in each worker); with
    ``shard_flags`` (a shared-memory bool tensor, one slot per URL of ``shards``) the main process
    learns which shards the workers found damaged, too.
    """

    def __init__(
        self,
        strict: bool = False,
        tally: torch.Tensor | None = None,
        shards: Sequence[str] = (),
        shard_flags: torch.Tensor | None = None,
    ) -> None:
        self.strict = strict
        self.tally = tally
        self.shard_index = {url: index for index, url in enumerate(shards)}
        self.shard_flags = shard_flags
        self.slot = 0
        self.count = 0
        self.consecutive = 0
        self.bad_shards: set[str] = set()

    def __call__(self, url: str, error: Exception, key: str | None = None) -> None:
        """Record (or raise) ``error`` met while reading shard ``url`` (sample ``key`` if known)."""
        where = url if key is None else f"{url} (sample {key})"
        problem = f"{type(error).__name__}: {error}"
        if self.strict:
            raise ShardError(f"{where}: unreadable: {problem}") from error
        self.count += 1
        if self.tally is not None:
            self.tally[self.slot] += 1
        self.consecutive += 1
        if self.shard_flags is not None and url in self.shard_index:
            self.shard_flags[self.shard_index[url]] = True
        if url not in self.bad_shards:
            self.bad_shards.add(url)
            log.warning("skipping unreadable data in shard %s: %s (strict=True raises instead)", where, problem)
        if self.consecutive >= MAX_CONSECUTIVE_ERRORS:
            raise ShardError(
                f"{self.consecutive} read errors in a row without one good sample (last: {where}: {problem}); "
                f"bad shards so far: {sorted(self.bad_shards)}"
            ) from error

    def succeeded(self) -> None:
        """A good sample arrived: the run of consecutive errors is over."""
        self.consecutive = 0


def read_shard(url: str, errors: ReadErrors, pipe_timeout: float | None = DEFAULT_PIPE_TIMEOUT) -> Iterator[Sample]:
    """Raw samples of one tar shard: ``__key__``, ``__url__`` and one ``bytes`` entry per file suffix.

    ``url`` is a path or a ``pipe:`` command (:mod:`cause_pl.shards.urls`). At a damaged member, or when
    a command fails, reading stops and ``errors`` is told: samples finished before it are kept, the
    one being read is dropped (even if all its files had arrived, its end was not seen). A shard with
    no sample at all is an error too (the index only lists shards that hold samples). A ``pipe:``
    command silent for ``pipe_timeout`` seconds while read is killed: a read error as well.
    """
    count = 0
    try:
        with open_shard(url, pipe_timeout) as stream:
            for sample in tar_samples(stream, url):
                count += 1
                yield sample
    except READ_ERRORS as error:
        errors(url, error)
        return
    if count == 0:
        errors(url, ShardError("no samples in shard"))


def decoded(samples: Iterator[Sample], decode: Decode, errors: ReadErrors) -> Iterator[Sample]:
    """``decode`` applied to each raw sample; samples it rejects go to ``errors``."""
    for sample in samples:
        try:
            item = decode(sample)
        except READ_ERRORS as error:
            errors(sample.get("__url__", "?"), error, sample.get("__key__"))
            continue
        errors.succeeded()
        yield item
