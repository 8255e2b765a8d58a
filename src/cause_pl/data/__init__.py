"""LightningDataModules over WebDataset shards, and the plumbing they share."""

from cause_pl.data.plumbing import (
    EvalStream,
    ReadErrors,
    TrainStream,
    batches_per_worker,
    make_loader,
    pad_collate,
    read_shard,
    split_shards,
)
from cause_pl.data.speech import SpeechAUDataModule

__all__ = [
    "EvalStream",
    "ReadErrors",
    "SpeechAUDataModule",
    "TrainStream",
    "batches_per_worker",
    "make_loader",
    "pad_collate",
    "read_shard",
    "split_shards",
]
