"""CelebA images + OpenFace FaceLandmarkImg CSVs -> faces shards (see ``celeba`` or ``--help``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from cause_pl.cli.command import require_file, run_as_command
from cause_pl.faces.align import align_face, aligned_face
from cause_pl.media.image import FaceImageError, read_image, to_rgb
from cause_pl.openface.reader import landmarks_2d, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from cause_pl.shards.encode import DEFAULT_WORKERS, encode_face, print_summary, require_folder
from cause_pl.shards.schema import FACES
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset

PARTITIONS = {"0": "train", "1": "val", "2": "test"}
CROP_SCALE = 1.6
"""Square side as a multiple of the landmarks' extent: brows to chin plus forehead and hair line."""
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
"""The 68-point scheme's eye contours: the eye on the image's left (the person's right eye), the other."""


@dataclass(frozen=True)
class FaceImage:
    """One listed image: its file, its OpenFace CSV, its split and its (unique, dot-free) shard key."""

    image: str
    csv: str
    split: str
    key: str


def sample_key(name: str, taken: set[str]) -> str:
    """``celeba_<stem>`` with dots as '-' (webdataset splits keys at the first dot), made unique by a
    ``_2``, ``_3``, ... suffix when two names give the same key (``a.b.jpg`` and ``a-b.jpg``)."""
    base = "celeba_" + Path(name).stem.replace(".", "-")
    key, number = base, 1
    while key in taken:
        number += 1
        key = f"{base}_{number}"
    taken.add(key)
    return key


def read_partition(path: Path, images: Path, openface: Path) -> dict[str, list[FaceImage]]:
    """Items per split from list_eval_partition.txt, in file order.

    A malformed line, an image listed twice (within a split, or in two splits: a leak between them) and
    a file listing no image are ValueErrors naming ``path:line``.
    """
    items: dict[str, list[FaceImage]] = {split: [] for split in PARTITIONS.values()}
    first_seen: dict[str, tuple[int, str]] = {}
    keys: set[str] = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1] not in PARTITIONS:
            raise ValueError(f"{path}:{number}: expected '<image> <0|1|2>', got {line!r}")
        name, split = fields[0], PARTITIONS[fields[1]]
        if name in first_seen:
            line_before, split_before = first_seen[name]
            if split_before == split:
                raise ValueError(f"{path}:{number}: {name} listed twice (lines {line_before} and {number})")
            where = f"{split_before} (line {line_before}) and {split} (line {number})"
            raise ValueError(f"{path}:{number}: {name} is in {where}")
        first_seen[name] = (number, split)
        csv = openface / f"{Path(name).stem}.csv"
        items[split].append(FaceImage(str(images / name), str(csv), split, sample_key(name, keys)))
    if not first_seen:
        raise ValueError(f"{path}: no images listed (expected lines '<image> <0|1|2>')")
    return items


def square_crop_box(landmarks: np.ndarray | None, width: int, height: int) -> tuple[int, int, int, int]:
    """A square box around the landmarks, or the largest centred square without them."""
    if landmarks is None:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    extent = high - low
    scaled = CROP_SCALE * float(extent.max())
    centre_x = (low[0] + high[0]) / 2
    centre_y = (low[1] + high[1]) / 2 - 0.1 * extent[1]
    left, top = round(centre_x - scaled / 2), round(centre_y - scaled / 2)
    return left, top, left + round(scaled), top + round(scaled)


def aligned(image: Image.Image, landmarks: np.ndarray | None, size: int, source: str) -> Image.Image:
    """The eye-aligned ``size`` square (:mod:`cause_pl.faces.align`): eyes at the centres of the landmarks'
    eye contours (OpenFace puts pixel centres at integers: +0.5 to continuous coordinates), or where the face
    detector finds them when the CSV has no landmarks."""
    if landmarks is None:
        return aligned_face(image, size, source=source).crop
    left, right = (landmarks[eye].mean(axis=0) + 0.5 for eye in (LEFT_EYE, RIGHT_EYE))
    return align_face(image, (float(left[0]), float(left[1])), (float(right[0]), float(right[1])), size)


def process(size: int, min_confidence: float, align: bool, item: FaceImage) -> Processed | Rejected:
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
        image = to_rgb(read_image(item.image))
        if align:
            face = aligned(image, landmarks, size, item.image)
        else:
            face = image.crop(square_crop_box(landmarks, *image.size)).resize((size, size), Image.Resampling.LANCZOS)
    except FaceImageError as error:
        return Rejected(item.image, error.problem)
    meta = {"image": Path(item.image).name, "face_id": track.face_id, "confidence": float(track.confidence[0])}
    return encode_face(item.key, face, track.aus[0], meta)


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
    align: bool = False,
) -> int:
    """CelebA images + OpenFace FaceLandmarkImg CSVs -> faces shards (train / val / test as CelebA defines).

    Reads list_eval_partition.txt (``<image> <0|1|2>``: train, val, test; the paper trains on the
    162,770 train images) and one ``<image stem>.csv`` per image. Each face is cropped to a square
    around its 68 landmarks (or the image centre when the CSV has none) and resized to --size pixels;
    with --align it is cropped like ``cause-pl animate`` crops photos instead: rotated and scaled so
    the eyes (from the landmarks, or found by the face detector when the CSV has none) land level at
    fixed places (img_align_celeba is aligned already, hence off by default).
    An image listed twice (or in two splits) stops the run; an unusable image or CSV goes to
    rejected.jsonl with the reason and the run goes on.

    Args:
        images: img_align_celeba/ folder
        partition: list_eval_partition.txt
        openface: folder of <image stem>.csv files
        out: output directory for shards, index.json and rejected.jsonl
        workers: parallel processes
        shard_size: faces per shard
        size: side of the square face crop in pixels
        min_confidence: OpenFace confidence below which a face is rejected
        align: eye-aligned crops (docs/design.md, "Face alignment") instead of the landmark square
    """
    for flag, folder in (("--images", images), ("--openface", openface)):
        require_folder(folder, flag)
    items = read_partition(require_file(partition, "--partition"), images, openface)
    index = write_dataset(
        out,
        FACES,
        plan_jobs(FACES, {split: found for split, found in items.items() if found}, shard_size),
        partial(process, size, min_confidence, align),
        workers=workers,
        # "align" only when on: runs without it keep the fingerprint they resume with
        settings={"image_size": size, "min_confidence": min_confidence} | ({"align": True} if align else {}),
        desc="celeba",
    )
    print_summary(index, "faces")
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(celeba))
