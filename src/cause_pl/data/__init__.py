"""LightningDataModules over WebDataset shards (the names configs use), and the streams under them."""

from cause_pl.data.base import ShardDataModule
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.data.speech import SpeechAUDataModule

__all__ = ["FaceAUDataModule", "ShardDataModule", "SpeechAUDataModule"]
