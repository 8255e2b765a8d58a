"""Damaged copies of the ``quick_demo`` shard folders (the fixture's own files are only read).

Each variant is a full copy of a shard folder with one thing wrong: ``index.json`` (not JSON, no
``splits``, a list, an unknown schema version, no test split, a shard entry without its sample count)
or one shard of the evaluated split (missing, truncated, a sample with arrays of the wrong shape or
holding NaN, a face that is not an image).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cause_pl.shards.schema import decode_npy, encode_npy

Rewrite = Callable[[dict[str, bytes]], dict[str, bytes]]
"""One sample's files (suffix -> bytes) -> the damaged files."""


def build_shard_variants(folder: Path, vox: Path, faces: Path) -> dict[str, Path]:
    """Every damaged copy, by name (``vox_*`` from the speech shards, ``faces_*`` from the faces)."""
    folder.mkdir(parents=True, exist_ok=True)
    variants: dict[str, Path] = {"empty_shards": folder / "empty"}
    variants["empty_shards"].mkdir()
    for name, (index_change, split, shard_change) in VOX_VARIANTS.items():
        variants[name] = damaged_copy(vox, folder / name, split, index_change, shard_change)
    for name, (index_change, split, shard_change) in FACE_VARIANTS.items():
        variants[name] = damaged_copy(faces, folder / name, split, index_change, shard_change)
    return variants


def damaged_copy(
    source: Path,
    target: Path,
    split: str,
    index_change: Callable[[Any], Any] | None,
    shard_change: Callable[[Path], None] | None,
) -> Path:
    shutil.copytree(source, target)
    index_path = target / "index.json"
    if index_change is not None:
        changed = index_change(json.loads(index_path.read_text()))
        index_path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    if shard_change is not None:
        shard_change(target / first_shard(source, split))
    return target


def first_shard(folder: Path, split: str) -> str:
    shards = json.loads((folder / "index.json").read_text())["splits"][split]["shards"]
    return next(shard["name"] for shard in shards if shard["samples"] > 0)


def truncate(shard: Path) -> None:
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])  # cut inside a member, not on a block boundary


def rewrite_first_sample(change: Rewrite) -> Callable[[Path], None]:
    """Rewrite ``shard`` with the files of its first sample passed through ``change``."""

    def rewrite(shard: Path) -> None:
        with tarfile.open(shard) as archive:
            members = [(member, archive.extractfile(member).read()) for member in archive.getmembers()]
        first_key = members[0][0].name.split(".", 1)[0]
        files = {m.name.split(".", 1)[1]: data for m, data in members if m.name.split(".", 1)[0] == first_key}
        files = change(files)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            for member, data in members:
                key, suffix = member.name.split(".", 1)
                if key == first_key:
                    data = files[suffix]
                info = tarfile.TarInfo(member.name)
                info.size, info.mtime = len(data), 0
                archive.addfile(info, io.BytesIO(data))
        shard.write_bytes(buffer.getvalue())

    return rewrite


def _array(files: dict[str, bytes], name: str, change: Callable[[np.ndarray], np.ndarray]) -> dict[str, bytes]:
    return {**files, name: encode_npy(change(np.array(decode_npy(files[name]))))}


def _nan_first(array: np.ndarray) -> np.ndarray:
    array.flat[0] = np.nan
    return array


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda index: {k: v for k, v in index.items() if k != key}


def _drop_split(split: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda index: {**index, "splits": {k: v for k, v in index["splits"].items() if k != split}}


def _shard_entry_without_samples(index: dict[str, Any]) -> dict[str, Any]:
    index["splits"]["test"]["shards"][0].pop("samples")
    return index


def _delete(shard: Path) -> None:
    shard.unlink()


VOX_VARIANTS: dict[str, tuple[Callable[[Any], Any] | None, str, Callable[[Path], None] | None]] = {
    "vox_not_json": (lambda index: '{"schema_version": 1, "kind": "speech_au", ', "test", None),
    "vox_no_splits": (_without("splits"), "test", None),
    "vox_list_index": (lambda index: [index], "test", None),
    "vox_version_9": (lambda index: {**index, "schema_version": 9}, "test", None),
    "vox_no_test": (_drop_split("test"), "test", None),
    "vox_entry_without_count": (_shard_entry_without_samples, "test", None),
    "vox_missing_shard": (None, "test", _delete),
    "vox_truncated": (None, "test", truncate),
    "vox_wrong_shapes": (None, "test", rewrite_first_sample(lambda f: _array(f, "mel.npy", lambda a: a[:, :3]))),
    "vox_nan_mel": (None, "test", rewrite_first_sample(lambda f: _array(f, "mel.npy", _nan_first))),
    "vox_nan_au": (None, "test", rewrite_first_sample(lambda f: _array(f, "au.npy", _nan_first))),
}

FACE_VARIANTS: dict[str, tuple[Callable[[Any], Any] | None, str, Callable[[Path], None] | None]] = {
    "faces_truncated": (None, "val", truncate),
    "faces_nan_au": (None, "val", rewrite_first_sample(lambda f: _array(f, "au.npy", _nan_first))),
    "faces_not_jpeg": (None, "val", rewrite_first_sample(lambda f: {**f, "jpg": b"not a jpeg"})),
}
