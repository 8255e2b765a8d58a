"""Building blocks shared by the scripts in ``data_recipes/``: the default worker count and sample encoders.

Nothing here knows a dataset's folder layout; the scripts do.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from PIL import Image

from cause_pl.features.mel import MelConfig, MelFrontend
from cause_pl.shards.schema import face_sample, speech_sample
from cause_pl.shards.writer import Processed

DEFAULT_WORKERS = min(8, os.cpu_count() or 1)
"""Parallel processes of a recipe unless ``--workers`` says otherwise."""


@lru_cache(maxsize=4)
def _frontend(config: MelConfig) -> MelFrontend:
    return MelFrontend(config).eval()


@torch.inference_mode()
def log_mel(wave: np.ndarray | torch.Tensor, config: MelConfig) -> np.ndarray:
    """Log-mel frames (F, n_mels) of a mono waveform, with the one shared frontend."""
    wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    return _frontend(config)(wave).numpy()


def encode_speech(key: str, mel: np.ndarray, au: np.ndarray, valid: np.ndarray, meta: Mapping[str, Any]) -> Processed:
    """A ``speech_au`` sample from frame-aligned arrays, trimmed to the shorter stream."""
    frames = min(len(mel), len(au))
    mel, au, valid = mel[:frames], au[:frames], valid[:frames]
    return Processed(sample=speech_sample(key, mel, au, valid, meta), au=au, valid=valid, mel=mel)


def encode_face(key: str, image: Image.Image, au: np.ndarray, meta: Mapping[str, Any], quality: int = 95) -> Processed:
    """A ``faces`` sample: the image as JPEG plus its AU vector."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    au = np.asarray(au, dtype=np.float32)
    return Processed(sample=face_sample(key, buffer.getvalue(), au, meta), au=au[None], valid=np.ones(1, dtype=bool))
