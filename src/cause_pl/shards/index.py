"""The ``index.json`` manifest beside a dataset's shards: splits, sample counts, frontend, statistics.

:class:`DatasetIndex` reads and checks it; :class:`FeatureStats` accumulates the per-band mel
mean/std and per-AU mean over the training split while shards are written (docs/design.md, "index.json").
"""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cause_pl.shards.schema import INDEX_FILE, KINDS, SCHEMA_VERSION, SPLITS, ShardError
from cause_pl.targets import TargetSpec, resolve_targets


@dataclass
class FeatureStats:
    """Running sums for dataset statistics: per-band mel mean/std and per-target mean over valid frames.

    The targets are AU intensities unless the dataset says otherwise (``cause_pl.targets``); their
    width is taken from the first sample added (``au_sum`` is empty until then).
    """

    mel_sum: np.ndarray | None = None
    mel_sq_sum: np.ndarray | None = None
    mel_frames: int = 0
    au_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    au_frames: int = 0

    def add(self, au: np.ndarray, valid: np.ndarray, mel: np.ndarray | None = None) -> None:
        """Add one sample: targets ``au`` (F, K) with ``valid`` (F,), optionally its ``mel`` (F, n_mels)."""
        valid = np.asarray(valid, dtype=bool).reshape(-1)
        au = np.asarray(au, dtype=np.float64).reshape(valid.shape[0], -1)
        if self.au_sum.size == 0:
            self.au_sum = np.zeros(au.shape[1])
        self.au_sum = self.au_sum + au[valid].sum(axis=0)
        self.au_frames += int(valid.sum())
        if mel is not None:
            mel = np.asarray(mel, dtype=np.float64)
            if self.mel_sum is None:
                self.mel_sum = np.zeros(mel.shape[1])
                self.mel_sq_sum = np.zeros(mel.shape[1])
            self.mel_sum = self.mel_sum + mel.sum(axis=0)
            self.mel_sq_sum = self.mel_sq_sum + np.square(mel).sum(axis=0)
            self.mel_frames += mel.shape[0]

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Sum of two running statistics (shards are processed independently)."""
        au_sum = other.au_sum if self.au_sum.size == 0 else self.au_sum if other.au_sum.size == 0 else None
        merged = FeatureStats(
            au_sum=self.au_sum + other.au_sum if au_sum is None else au_sum, au_frames=self.au_frames + other.au_frames
        )
        merged.mel_frames = self.mel_frames + other.mel_frames
        if self.mel_sum is None or other.mel_sum is None:
            source = self if other.mel_sum is None else other
            merged.mel_sum, merged.mel_sq_sum = source.mel_sum, source.mel_sq_sum
        else:
            assert self.mel_sq_sum is not None and other.mel_sq_sum is not None, "set together with mel_sum"
            merged.mel_sum = self.mel_sum + other.mel_sum
            merged.mel_sq_sum = self.mel_sq_sum + other.mel_sq_sum
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Raw sums, JSON-safe, for per-shard sidecars."""
        return {
            "au_sum": self.au_sum.tolist(),
            "au_frames": self.au_frames,
            "mel_sum": None if self.mel_sum is None else self.mel_sum.tolist(),
            "mel_sq_sum": None if self.mel_sq_sum is None else self.mel_sq_sum.tolist(),
            "mel_frames": self.mel_frames,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStats:
        """Inverse of :meth:`to_dict`."""
        as_array = lambda value: None if value is None else np.asarray(value, dtype=np.float64)  # noqa: E731
        return cls(
            mel_sum=as_array(data["mel_sum"]),
            mel_sq_sum=as_array(data["mel_sq_sum"]),
            mel_frames=int(data["mel_frames"]),
            au_sum=np.asarray(data["au_sum"], dtype=np.float64),
            au_frames=int(data["au_frames"]),
        )

    def summary(self) -> dict[str, Any]:
        """Means and standard deviations as stored in index.json."""
        summary: dict[str, Any] = {
            "au_frames": self.au_frames,
            "au_mean": (self.au_sum / max(self.au_frames, 1)).tolist(),
        }
        if self.mel_sum is not None and self.mel_sq_sum is not None and self.mel_frames:
            mean = self.mel_sum / self.mel_frames
            var = np.maximum(self.mel_sq_sum / self.mel_frames - np.square(mean), 0.0)
            summary.update(mel_frames=self.mel_frames, mel_mean=mean.tolist(), mel_std=np.sqrt(var).tolist())
        return summary


def _checked_splits(path: Path, splits: Any) -> dict[str, list[dict[str, Any]]]:
    """``splits`` of index.json as ``{split: [{name, samples}, ...]}`` in split order; ShardError if malformed."""
    if not isinstance(splits, dict):
        found = "none" if splits is None else f"a JSON {type(splits).__name__}"
        raise ShardError(f"{path}: 'splits' is {found}; expected {{split: {{'shards': [{{name, samples}}, ...]}}}}")
    checked: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(splits, key=_split_rank):
        shards = splits[name].get("shards") if isinstance(splits[name], dict) else None
        if not isinstance(shards, list) or not all(_is_shard_entry(shard) for shard in shards):
            raise ShardError(
                f'{path}: split {name!r}: \'shards\' must be a list of {{"name": FILE, "samples": COUNT}} entries'
            )
        checked[name] = shards
    return checked


def _is_shard_entry(shard: Any) -> bool:
    return (
        isinstance(shard, dict)
        and isinstance(shard.get("name"), str)
        and isinstance(shard.get("samples"), int)
        and not isinstance(shard.get("samples"), bool)
        and shard["samples"] >= 0
    )


def _split_rank(split: str) -> tuple[int, str]:
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


@dataclass(frozen=True)
class DatasetIndex:
    """The parsed ``index.json`` of a shard directory."""

    root: Path
    kind: str
    splits: Mapping[str, list[dict[str, Any]]]
    stats: Mapping[str, Any]
    frontend: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    targets_spec: Mapping[str, Any] | None = None

    @classmethod
    def load(cls, root: str | Path) -> DatasetIndex:
        """Read ``root/index.json``, checking schema version, kind and the layout of ``splits``.

        A missing ``root`` is a FileNotFoundError and a file there a NotADirectoryError (the OS said no);
        a folder without a usable index.json is a :class:`ShardError` naming the file and the problem.
        """
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(errno.ENOENT, "no such shard folder", str(root))
        if not root.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a shard folder (a file)", str(root))
        path = root / INDEX_FILE
        if not path.is_file():
            raise ShardError(f"{path}: no index.json; is {root} a shard directory written by a data recipe?")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ShardError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ShardError(f"{path}: a JSON {type(data).__name__}, expected an object with 'splits'")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ShardError(f"{path}: schema version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        if data.get("kind") not in KINDS:
            raise ShardError(f"{path}: kind {data.get('kind')!r}, expected one of {KINDS}")
        return cls(
            root=root,
            kind=data["kind"],
            splits=_checked_splits(path, data.get("splits")),
            stats=data.get("stats") or {},
            frontend=data.get("frontend"),
            extra=data.get("extra") or {},
            targets_spec=data.get("targets"),
        )

    @property
    def targets(self) -> TargetSpec:
        """What the samples' ``au.npy`` holds per frame: index.json's ``targets`` (absent: the 17 AUs)."""
        try:
            return resolve_targets(self.targets_spec)
        except (KeyError, TypeError, ValueError) as error:
            raise ShardError(f"{self.root / INDEX_FILE}: bad 'targets' entry ({error})") from error

    def _split(self, split: str) -> list[dict[str, Any]]:
        if split not in self.splits:
            raise ShardError(f"{self.root}: no split {split!r}; available: {sorted(self.splits)}")
        return self.splits[split]

    def shard_names(self, split: str) -> list[str]:
        """File names of a split's shards that hold at least one sample, in index order."""
        return [shard["name"] for shard in self._split(split) if shard["samples"] > 0]

    def shard_paths(self, split: str) -> list[str]:
        """Paths of a split's shards (beside index.json) that hold at least one sample."""
        return [str(self.root / name) for name in self.shard_names(split)]

    def num_samples(self, split: str) -> int:
        """Number of samples in a split."""
        return sum(shard["samples"] for shard in self._split(split))

    def array(self, name: str) -> np.ndarray:
        """A statistic from index.json as float32 array (``mel_mean``, ``mel_std``, ``au_mean``)."""
        if name not in self.stats:
            raise ShardError(f"{self.root / INDEX_FILE}: no statistic {name!r}")
        return np.asarray(self.stats[name], dtype=np.float32)
