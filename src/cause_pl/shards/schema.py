"""Shard schema (docs/design.md, "Shards"): sample encoding and atomic shard files.

The ``index.json`` manifest beside the shards is :mod:`cause_pl.shards.index`.

Two kinds of shards exist. ``speech_au``: one utterance per sample with ``mel.npy`` (frames, n_mels)
float16, ``au.npy`` (frames, 17) float16 on the 0..5 scale (or the targets index.json names),
``valid.npy`` (frames,) bool and a ``json`` record. ``faces``: one image per sample with ``jpg``,
``au.npy`` (17,) float32 and ``json``.
Arrays are stored as plain ``.npy`` (never pickled) so any reader, ``webdataset`` included, decodes them.

:func:`decode_npy` parses the ``.npy`` headers numpy writes instead of calling ``np.load``
(``literal_eval`` of every header was a large part of a training loader's time, ``benchmarks/loader.py``);
tar files are read by :mod:`cause_pl.shards.tar_reader`.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from cause_pl.au import NUM_AUS

SCHEMA_VERSION = 1


SPEECH_AU = "speech_au"


FACES = "faces"


KINDS = (SPEECH_AU, FACES)


INDEX_FILE = "index.json"


REJECTED_FILE = "rejected.jsonl"


SPLITS = ("train", "val", "test")
"""Canonical split order; index.json may hold others, listed after these."""


class ShardError(ValueError):
    """A shard directory, index or sample that does not follow the schema."""


def encode_npy(array: np.ndarray) -> bytes:
    """Serialise an array as ``.npy`` bytes (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


NPY_V1_MAGIC = b"\x93NUMPY\x01\x00"


_NPY_V1_HEADER = re.compile(rb"\{'descr': '([<>|][biufc]\d+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n")
"""The header numpy writes for a C-ordered array of a plain number or bool dtype."""


@functools.lru_cache(maxsize=4096)
def _npy_v1_layout(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """dtype, shape and element count of a :data:`_NPY_V1_HEADER` (None for any other header).

    Cached: a shard's arrays share few distinct headers (one per dtype and shape).
    """
    match = _NPY_V1_HEADER.fullmatch(header)
    if match is None:
        return None
    shape = tuple(int(size) for size in match[2].split(b",") if size.strip())
    return np.dtype(match[1].decode()), shape, math.prod(shape)


def decode_npy(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_npy`, a read-only view of ``data``; refuses pickled object arrays.

    The common header (:data:`_NPY_V1_HEADER`) is parsed here, ~30x faster than ``np.load``;
    anything else (other versions, Fortran order, structured dtypes) goes through ``np.load``.
    """
    if data[:8] == NPY_V1_MAGIC:
        end = 10 + int.from_bytes(data[8:10], "little")
        layout = _npy_v1_layout(data[10:end])
        if layout is not None:
            dtype, shape, count = layout
            return np.frombuffer(data, dtype, count, end).reshape(shape)
    array = np.load(io.BytesIO(data), allow_pickle=False)
    array.flags.writeable = False
    return array


def check_key(key: str) -> str:
    """WebDataset splits file names at the first dot: keys must not contain one (nor a slash)."""
    if not key or "." in key or "/" in key:
        raise ShardError(f"invalid sample key {key!r}: keys must be non-empty without '.' or '/'")
    return key


def speech_sample(
    key: str, mel: np.ndarray, au: np.ndarray, valid: np.ndarray, meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Encode one utterance as a ``speech_au`` sample; checks shapes agree frame for frame.

    ``au`` holds the per-frame targets: the 17 AUs, or what index.json's ``targets`` names.
    """
    frames = mel.shape[0]
    if mel.ndim != 2 or au.ndim != 2 or au.shape[0] != frames or au.shape[1] < 1 or valid.shape != (frames,):
        raise ShardError(
            f"sample {key}: shapes disagree: mel {mel.shape}, au {au.shape}, valid {valid.shape}"
            f" (expected (F, n_mels), (F, targets), (F,))"
        )
    return {
        "__key__": check_key(key),
        "mel.npy": encode_npy(mel.astype(np.float16)),
        "au.npy": encode_npy(au.astype(np.float16)),
        "valid.npy": encode_npy(valid.astype(bool)),
        "json": json.dumps({**meta, "frames": int(frames)}, sort_keys=True).encode(),
    }


def face_sample(key: str, jpeg: bytes, au: np.ndarray, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Encode one face image as a ``faces`` sample."""
    if au.ndim != 1 or au.shape[0] < 1:
        raise ShardError(f"sample {key}: au shape {au.shape}, expected (targets,), e.g. ({NUM_AUS},)")
    return {
        "__key__": check_key(key),
        "jpg": bytes(jpeg),
        "au.npy": encode_npy(au.astype(np.float32)),
        "json": json.dumps(dict(meta), sort_keys=True).encode(),
    }


def shard_name(kind: str, split: str, index: int) -> str:
    """File name of shard ``index`` of a split, e.g. ``speech_au-train-000003.tar``."""
    return f"{kind}-{split}-{index:06d}.tar"


def write_shard(path: Path, samples: Iterable[Mapping[str, Any]]) -> int:
    """Write samples to ``path`` atomically (temporary name, then rename); returns the count.

    File times are fixed, so the same samples always give byte-identical shards. The time is an
    integer: a float one makes ``tarfile`` add a PAX header (two more 512-byte blocks) to every file.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    count = 0
    with open(partial, "wb") as stream:
        with wds.TarWriter(stream, encoder=False, mtime=0) as writer:
            for sample in samples:
                writer.write(dict(sample))
                count += 1
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
    return count


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(partial, path)
