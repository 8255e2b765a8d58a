"""Building blocks shared by the scripts in ``data_recipes/``: common flags and sample encoders.

Nothing here knows a dataset's folder layout; the scripts do.
"""

from __future__ import annotations

import argparse
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


def recipe_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every recipe shares."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory for shards, index.json and rejected.jsonl")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    parser.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    return parser


def add_frontend_flags(parser: argparse.ArgumentParser) -> None:
    """Flags for the mel frontend; defaults are DESIGN.md's (16 kHz, 25 fps, 80 bands)."""
    defaults = MelConfig()
    group = parser.add_argument_group("mel frontend")
    group.add_argument("--sample-rate", type=int, default=defaults.sample_rate)
    group.add_argument("--fps", type=int, default=defaults.fps, help="frames per second of mel and AU tracks")
    group.add_argument("--n-mels", type=int, default=defaults.n_mels)


def frontend_config(args: argparse.Namespace) -> MelConfig:
    """The MelConfig the frontend flags describe."""
    return MelConfig(sample_rate=args.sample_rate, fps=args.fps, n_mels=args.n_mels)


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
