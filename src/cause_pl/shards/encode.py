"""Building blocks shared by the scripts in ``data_recipes/``: the default worker count, input checks,
sample encoders (which clamp AU values into 0..5 and count them) and the summary a recipe prints.

Nothing here knows a dataset's folder layout; the scripts do.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cause_pl.au import AU_MAX, AU_MIN
from cause_pl.cpus import usable_cpus
from cause_pl.features.mel import MelConfig, MelFrontend
from cause_pl.media.image import to_rgb
from cause_pl.shards.index import DatasetIndex
from cause_pl.shards.schema import INDEX_FILE, REJECTED_FILE, ShardError, face_sample, speech_sample
from cause_pl.shards.writer import Processed, clamped_au_values
from cause_pl.targets import DEFAULT_TARGETS, TargetSpec

DEFAULT_WORKERS = min(8, usable_cpus())
"""Parallel processes of a recipe unless ``--workers`` says otherwise."""


def require_folder(path: Path, flag: str) -> Path:
    """``path`` if it is a folder; else a FileNotFoundError naming ``flag`` and the path (exit 3)."""
    if not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"{flag}: no such folder", str(path))
    return path


def clamp_aus(au: np.ndarray, low: float = AU_MIN, high: float = AU_MAX) -> tuple[np.ndarray, int]:
    """``au`` as float32 clamped to ``low..high`` (the AU range by default), and how many values lay
    strictly outside (-0.0 and 5.0 do not)."""
    au = np.asarray(au, dtype=np.float32)
    outside = int(np.count_nonzero((au < low) | (au > high)))
    return np.clip(au, low, high), outside


@lru_cache(maxsize=4)
def _frontend(config: MelConfig) -> MelFrontend:
    return MelFrontend(config).eval()


@torch.inference_mode()
def log_mel(wave: np.ndarray | torch.Tensor, config: MelConfig) -> np.ndarray:
    """Log-mel frames (F, n_mels) of a mono waveform, with the one shared frontend."""
    wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    return _frontend(config)(wave).numpy()


def encode_speech(
    key: str,
    mel: np.ndarray,
    au: np.ndarray,
    valid: np.ndarray,
    meta: Mapping[str, Any],
    targets: TargetSpec = DEFAULT_TARGETS,
) -> Processed:
    """A ``speech_au`` sample from frame-aligned arrays, trimmed to the shorter stream, targets (AUs by
    default) clamped to their range."""
    frames = min(len(mel), len(au))
    if np.asarray(au).ndim != 2 or np.asarray(au).shape[1] != targets.size:
        raise ShardError(f"sample {key}: targets of shape {np.asarray(au).shape}, expected (F, {targets.size})")
    au, clamped = clamp_aus(au[:frames], targets.low, targets.high)
    mel, valid = mel[:frames], valid[:frames]
    return Processed(speech_sample(key, mel, au, valid, meta), au=au, valid=valid, mel=mel, clamped=clamped)


def encode_face(
    key: str,
    image: Image.Image,
    au: np.ndarray,
    meta: Mapping[str, Any],
    quality: int = 95,
    targets: TargetSpec = DEFAULT_TARGETS,
) -> Processed:
    """A ``faces`` sample: the image (any mode, via ``to_rgb``) as JPEG plus its AU vector (or other
    targets), clamped to their range."""
    buffer = io.BytesIO()
    to_rgb(image).save(buffer, format="JPEG", quality=quality)
    au, clamped = clamp_aus(au, targets.low, targets.high)
    sample = face_sample(key, buffer.getvalue(), au, meta)
    return Processed(sample, au=au[None], valid=np.ones(1, dtype=bool), clamped=clamped)


def print_summary(index: DatasetIndex, unit: str) -> None:
    """What a recipe wrote: samples and shards per split, clamped AU values, rejections, where the index is."""
    for split in index.splits:
        print(f"{split}: {index.num_samples(split)} {unit} in {len(index.splits[split])} shards")
    clamped = ", ".join(f"{split} {count}" for split, count in clamped_au_values(index).items())
    targets = index.targets
    what = "AU values" if targets.is_aus else f"{targets.name} values"
    print(f"{what} outside {targets.low:g}..{targets.high:g} clamped into the range: {clamped or 'none'}")
    rejected = index.root / REJECTED_FILE
    print(f"rejected: {len(rejected.read_text().splitlines())} (see {rejected}); index: {index.root / INDEX_FILE}")
