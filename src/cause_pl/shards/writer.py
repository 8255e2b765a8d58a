"""Turn a list of items into shards: in parallel, resumable, with index.json and rejected.jsonl.

A recipe lists its items per split and supplies ``process(item)``, which returns a
:class:`Processed` sample or a :class:`Rejected` reason. Items are cut into fixed shard jobs in
the order given, so a run that is killed and started again skips every complete shard and ends with
the same files as an uninterrupted run. Each job writes its tar, then a small sidecar (sample count,
statistics, rejections, clamped AU values) that marks it complete, so the manifest can be assembled
without reading the shards back. One run at a time writes a folder (``shards/lock.py``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cause_pl.media.atomic import atomic_output
from cause_pl.shards.index import DatasetIndex, FeatureStats
from cause_pl.shards.lock import exclusive_folder
from cause_pl.shards.schema import (
    INDEX_FILE,
    REJECTED_FILE,
    SCHEMA_VERSION,
    ShardError,
    shard_name,
    write_json_atomic,
    write_shard,
)

PARTS_DIR = ".parts"
PLAN_FILE = "plan.json"
CLAMPED_KEY = "clamped_au_values"
"""index.json's count, per split, of AU values outside 0..5 that were clamped into the range."""


@dataclass
class Processed:
    """One encoded sample, the arrays the dataset statistics are computed from, and how many AU values
    the encoder clamped into 0..5."""

    sample: dict[str, Any]
    au: np.ndarray
    valid: np.ndarray
    mel: np.ndarray | None = None
    clamped: int = 0


@dataclass(frozen=True)
class Rejected:
    """An item that cannot be used, and why (goes to rejected.jsonl, never silently dropped)."""

    item: str
    reason: str


ProcessFn = Callable[[Any], "Processed | Rejected"]


@dataclass(frozen=True)
class ShardJob:
    """The items of one shard."""

    split: str
    index: int
    name: str
    items: tuple[Any, ...]


def plan_jobs(kind: str, items_by_split: Mapping[str, Sequence[Any]], shard_size: int) -> list[ShardJob]:
    """Cut each split's items, in the order given, into shards of ``shard_size`` items."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    jobs = []
    for split, items in items_by_split.items():
        for index, start in enumerate(range(0, len(items), shard_size)):
            chunk = tuple(items[start : start + shard_size])
            jobs.append(ShardJob(split, index, shard_name(kind, split, index), chunk))
    return jobs


def _sidecar(out_dir: Path, job: ShardJob) -> Path:
    return out_dir / PARTS_DIR / f"{job.name}.json"


def _is_complete(out_dir: Path, job: ShardJob) -> bool:
    return _sidecar(out_dir, job).is_file() and (out_dir / job.name).is_file()


def run_job(out_dir: Path, process: ProcessFn, job: ShardJob) -> int:
    """Process one job's items and write its shard; returns the number of items handled."""
    stats = FeatureStats()
    rejected: list[dict[str, str]] = []
    clamped = 0

    def samples() -> Iterator[dict[str, Any]]:
        nonlocal clamped
        for item in job.items:
            result = process(item)
            if isinstance(result, Rejected):
                rejected.append({"split": job.split, "item": result.item, "reason": result.reason})
                continue
            clamped += result.clamped
            stats.add(result.au, result.valid, result.mel)
            yield result.sample

    count = write_shard(out_dir / job.name, samples())
    # The sidecar marks the shard complete, so it is written last.
    sidecar = {"samples": count, "rejected": rejected, "stats": stats.to_dict(), CLAMPED_KEY: clamped}
    write_json_atomic(_sidecar(out_dir, job), sidecar)
    return len(job.items)


def _limit_threads() -> None:
    """Workers run one item at a time; many intra-op threads per worker only oversubscribe the CPU."""
    import torch

    torch.set_num_threads(1)


def _plan_fingerprint(kind: str, jobs: Sequence[ShardJob], settings: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps({"kind": kind, "settings": settings}, sort_keys=True, default=str).encode())
    for job in jobs:
        digest.update(f"{job.name}:{len(job.items)}:{job.items!r}".encode())
    return digest.hexdigest()


def _check_plan(out_dir: Path, fingerprint: str) -> None:
    """Refuse to resume into a directory written with other items or settings."""
    plan_path = out_dir / PARTS_DIR / PLAN_FILE
    if plan_path.is_file():
        previous = json.loads(plan_path.read_text()).get("fingerprint")
        if previous != fingerprint:
            raise ShardError(
                f"{out_dir} holds shards of a different run (other inputs or settings); "
                "use a new --out directory or delete the old one"
            )
    else:
        write_json_atomic(plan_path, {"fingerprint": fingerprint})


def write_dataset(
    out_dir: str | Path,
    kind: str,
    jobs: Sequence[ShardJob],
    process: ProcessFn,
    *,
    workers: int = 1,
    settings: Mapping[str, Any] | None = None,
    frontend: Mapping[str, Any] | None = None,
    targets: Mapping[str, Any] | None = None,
    stats_split: str = "train",
    desc: str = "shards",
) -> DatasetIndex:
    """Write every job's shard (skipping complete ones), then ``index.json`` and ``rejected.jsonl``.

    ``targets`` (a ``TargetSpec.to_dict()``; ``None``: the 17 AUs) says what ``au.npy`` holds.
    ``settings`` (anything that changes the shards' content, e.g. image size), ``frontend`` and
    ``targets`` are fingerprinted with the plan, so resuming with other settings is an error rather than a mix.
    Statistics are computed over ``stats_split`` (the training split). Raises
    :class:`~cause_pl.shards.lock.FolderInUseError`, touching nothing, while another run writes ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_folder(out_dir):
        (out_dir / PARTS_DIR).mkdir(exist_ok=True)
        fingerprinted = {"settings": settings, "frontend": frontend, **({"targets": targets} if targets else {})}
        _check_plan(out_dir, _plan_fingerprint(kind, jobs, fingerprinted))
        for stale in out_dir.glob("*.partial"):
            stale.unlink()
        _run_jobs(out_dir, jobs, process, workers, desc)
        return _write_manifest(out_dir, kind, jobs, frontend, targets, stats_split, dict(settings or {}))


def _run_jobs(out_dir: Path, jobs: Sequence[ShardJob], process: ProcessFn, workers: int, desc: str) -> None:
    """Run the jobs whose shard is not complete yet, in a spawn pool when there are workers to share them."""
    todo = [job for job in jobs if not _is_complete(out_dir, job)]
    done_items = sum(len(job.items) for job in jobs) - sum(len(job.items) for job in todo)
    work = partial(run_job, out_dir, process)
    with tqdm(total=done_items + sum(len(j.items) for j in todo), initial=done_items, desc=desc, unit="item") as bar:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                bar.update(work(job))
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(todo)), initializer=_limit_threads) as pool:
                for handled in pool.imap_unordered(work, todo):
                    bar.update(handled)


def _write_manifest(
    out_dir: Path,
    kind: str,
    jobs: Sequence[ShardJob],
    frontend: Mapping[str, Any] | None,
    targets: Mapping[str, Any] | None,
    stats_split: str,
    extra: dict[str, Any],
) -> DatasetIndex:
    splits: dict[str, dict[str, Any]] = {}
    stats = FeatureStats()
    rejected: list[dict[str, str]] = []
    clamped: dict[str, int] = {}
    for job in jobs:
        sidecar = json.loads(_sidecar(out_dir, job).read_text())
        split = splits.setdefault(job.split, {"shards": [], "samples": 0})
        split["shards"].append({"name": job.name, "samples": sidecar["samples"]})
        split["samples"] += sidecar["samples"]
        rejected.extend(sidecar["rejected"])
        clamped[job.split] = clamped.get(job.split, 0) + sidecar.get(CLAMPED_KEY, 0)  # absent: older sidecar
        if job.split == stats_split:
            stats = stats.merge(FeatureStats.from_dict(sidecar["stats"]))
    with atomic_output(out_dir / REJECTED_FILE) as temporary:  # a failed run leaves the previous list whole
        temporary.write_text("".join(json.dumps(record, sort_keys=True) + "\n" for record in rejected))
    write_json_atomic(
        out_dir / INDEX_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "kind": kind,
            "frontend": frontend,
            **({"targets": dict(targets)} if targets else {}),
            "splits": splits,
            "stats": {"split": stats_split, **stats.summary()},
            "rejected": len(rejected),
            CLAMPED_KEY: clamped,
            "extra": extra,
        },
    )
    return DatasetIndex.load(out_dir)


def clamped_au_values(index: DatasetIndex) -> dict[str, int]:
    """Per split, how many AU values outside 0..5 were clamped into the range (index.json's record)."""
    return dict(json.loads((index.root / INDEX_FILE).read_text()).get(CLAMPED_KEY, {}))
