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
from cause_pl.data.base import ShardDataModule
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.data.speech import SpeechAUDataModule

__all__ = [
    "EvalStream",
    "FaceAUDataModule",
    "ReadErrors",
    "ShardDataModule",
    "SpeechAUDataModule",
    "TrainStream",
    "batches_per_worker",
    "make_loader",
    "pad_collate",
    "read_shard",
    "split_shards",
]
