"""The loader a user would write with plain webdataset for our shards: row (d) of ``loader.py``.

Resampled shards (drawn with replacement, as the data module draws them), a shuffle buffer of the
data module's default size, webdataset's own decoding of the ``.npy`` members, the same random crop
and zero padding as the other rows, batched in the workers and handed over by ``WebLoader``.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import numpy as np
import torch
import webdataset as wds

SHUFFLE_BUFFER = 1000
"""``SpeechAUDataModule``'s default shuffle buffer."""


def crop_pad(mel: np.ndarray, au: np.ndarray, mask: np.ndarray, crop_frames: int) -> dict[str, torch.Tensor]:
    """``crop_frames`` frames at a random offset as float32/bool tensors, zero-padded when shorter."""
    length = len(mel)
    start = random.randint(0, max(length - crop_frames, 0))
    end = start + min(length, crop_frames)
    pad = crop_frames - (end - start)
    return {
        "mel": torch.from_numpy(np.pad(mel[start:end].astype(np.float32), ((0, pad), (0, 0)))),
        "au": torch.from_numpy(np.pad(au[start:end].astype(np.float32), ((0, pad), (0, 0)))),
        "mask": torch.from_numpy(np.pad(mask[start:end], (0, pad))),
        "lengths": torch.tensor(end - start),
    }


def _crop(sample: dict[str, Any], crop_frames: int) -> dict[str, torch.Tensor]:
    return crop_pad(sample["mel.npy"], sample["au.npy"], sample["valid.npy"], crop_frames)


def _stack(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The tensors of ``samples`` stacked (webdataset keeps ``__key__`` and such beside them: left out)."""
    return {name: torch.stack([sample[name] for sample in samples]) for name in samples[0] if not name.startswith("__")}


def plain_webdataset_loader(
    paths: list[str], workers: int, batch_size: int, crop_frames: int, seed: int
) -> wds.WebLoader:
    """An endless loader of ``batch_size`` cropped utterances from the shard files ``paths``."""
    dataset = (
        wds.WebDataset(paths, resampled=True, shardshuffle=False, seed=seed)
        .shuffle(SHUFFLE_BUFFER)
        .decode()
        .map(partial(_crop, crop_frames=crop_frames))
        .batched(batch_size, collation_fn=_stack, partial=False)
    )
    return wds.WebLoader(dataset, batch_size=None, num_workers=workers)
