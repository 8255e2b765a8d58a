"""Exact or loud evaluation: compare the samples evaluated with what index.json lists for the split."""

from __future__ import annotations

from torch.utils.data import DataLoader

from cause_pl.data.base import ShardDataModule


class IncompleteEvaluationError(ValueError):
    """Fewer samples were read than index.json lists for the split (damaged or missing shards)."""


def check_coverage(data: ShardDataModule, split: str, loader: DataLoader, evaluated: int, allow_missing: bool) -> int:
    """Samples of ``split`` that index.json lists but that were not evaluated; an error unless ``allow_missing``.

    The damaged shards are named, whether this process or DataLoader workers read them.
    """
    expected = data.index.num_samples(split)
    missing = expected - evaluated
    if missing <= 0 or allow_missing:
        return max(missing, 0)
    bad = sorted(getattr(loader.dataset, "bad_shards", ()))  # named by the workers too (a shared-memory flag)
    where = f"damaged shard(s): {', '.join(bad)}" if bad else "see the warnings above for the damaged shards"
    raise IncompleteEvaluationError(
        f"{data.root}: {split} split: {missing} of {expected} samples listed in index.json could not be read "
        f"({where}); repair the shards, or pass --allow_missing to evaluate the readable ones"
    )
