"""CelebA images + OpenFace FaceLandmarkImg CSVs -> faces shards (see ``celeba`` or ``--help``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cause_pl.cli.command import run_as_command
from cause_pl.openface.reader import landmarks_2d, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from cause_pl.shards.encode import DEFAULT_WORKERS, encode_face
from cause_pl.shards.schema import FACES
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset

PARTITIONS = {"0": "train", "1": "val", "2": "test"}
CROP_SCALE = 1.6
"""Square side as a multiple of the landmarks' extent: brows to chin plus forehead and hair line."""


@dataclass(frozen=True)
class FaceImage:
    image: str
    csv: str
    split: str


def read_partition(path: Path, images: Path, openface: Path) -> dict[str, list[FaceImage]]:
    """Items per split from list_eval_partition.txt, in file order."""
    items: dict[str, list[FaceImage]] = {split: [] for split in PARTITIONS.values()}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1] not in PARTITIONS:
            raise ValueError(f"{path}:{number}: expected '<image> <0|1|2>', got {line!r}")
        name, split = fields[0], PARTITIONS[fields[1]]
        items[split].append(FaceImage(str(images / name), str(openface / f"{Path(name).stem}.csv"), split))
    return items


def square_crop_box(landmarks: np.ndarray | None, width: int, height: int) -> tuple[int, int, int, int]:
    """A square box around the landmarks, or the largest centred square without them."""
    if landmarks is None:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    extent = high - low
    side = CROP_SCALE * float(extent.max())
    centre_x = (low[0] + high[0]) / 2
    centre_y = (low[1] + high[1]) / 2 - 0.1 * extent[1]
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    return left, top, left + round(side), top + round(side)


def process(size: int, min_confidence: float, item: FaceImage) -> Processed | Rejected:
    if not Path(item.csv).is_file():
        return Rejected(item.image, f"no OpenFace CSV at {item.csv}")
    try:
        track = read_openface_csv(item.csv, min_confidence=min_confidence)
        landmarks = landmarks_2d(item.csv, face_id=track.face_id)
    except OpenFaceError as error:
        return Rejected(item.image, f"bad OpenFace CSV: {error}")
    if not track.valid[0]:
        return Rejected(item.image, f"no confident face: confidence {track.confidence[0]:.2f} < {min_confidence}")
    try:
        with Image.open(item.image) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        return Rejected(item.image, f"unreadable image: {error}")
    box = square_crop_box(landmarks, *image.size)
    face = image.crop(box).resize((size, size), Image.Resampling.LANCZOS)
    stem = Path(item.image).stem
    meta = {"image": Path(item.image).name, "face_id": track.face_id, "confidence": float(track.confidence[0])}
    return encode_face(f"celeba_{stem}", face, track.aus[0], meta)


def celeba(
    *,
    images: Path,
    partition: Path,
    openface: Path,
    out: Path,
    workers: int = DEFAULT_WORKERS,
    shard_size: int = 1000,
    size: int = 128,
    min_confidence: float = 0.7,
) -> int:
    """CelebA images + OpenFace FaceLandmarkImg CSVs -> faces shards (train / val / test as CelebA defines).

    Reads list_eval_partition.txt (``<image> <0|1|2>``: train, val, test; the paper trains on the
    162,770 train images) and one ``<image stem>.csv`` per image. Each face is cropped to a square
    around its 68 landmarks (or the image centre when the CSV has none) and resized to --size pixels.

    Args:
        images: img_align_celeba/ folder
        partition: list_eval_partition.txt
        openface: folder of <image stem>.csv files
        out: output directory for shards, index.json and rejected.jsonl
        workers: parallel processes
        shard_size: faces per shard
        size: side of the square face crop in pixels
        min_confidence: OpenFace confidence below which a face is rejected
    """
    items = read_partition(partition, images, openface)
    index = write_dataset(
        out,
        FACES,
        plan_jobs(FACES, {split: found for split, found in items.items() if found}, shard_size),
        partial(process, size, min_confidence),
        workers=workers,
        settings={"image_size": size, "min_confidence": min_confidence},
        desc="celeba",
    )
    for split in index.splits:
        print(f"{split}: {index.num_samples(split)} faces in {len(index.splits[split])} shards")
    print(f"index: {index.root / 'index.json'}; rejected items: {out / 'rejected.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(celeba))
