"""data_recipes/celeba.py on a small CelebA-shaped folder of real JPEGs and FaceLandmarkImg CSVs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cause_pl.au import NUM_AUS
from cause_pl.faces.align import EYE_TARGETS
from tests.builders.openface_csv import write_image_csv
from tests.faces.photos import centroids, dots, scene
from tests.recipes.util import read_rejected, read_split, run_recipe, run_recipe_from_config

WIDTH, HEIGHT = 178, 218  # img_align_celeba size


def face_photo(seed: int) -> Image.Image:
    """A CelebA-sized photo: grey background with a bright square 'face' at a known place."""
    rng = np.random.default_rng(seed)
    pixels = np.full((HEIGHT, WIDTH, 3), 40, dtype=np.uint8)
    pixels[70:150, 50:130] = rng.integers(150, 255, size=3)
    return Image.fromarray(pixels)


def landmarks_around(left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """68 points spread over the box (a stand-in for a real landmark fit)."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    cx, cy, rx, ry = (left + right) / 2, (top + bottom) / 2, (right - left) / 2, (bottom - top) / 2
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    images, openface = root / "img_align_celeba", root / "openface"
    images.mkdir()
    openface.mkdir()
    partition = []
    aus = {}
    for number in range(1, 13):
        name = f"{number:06d}.jpg"
        face_photo(number).save(images / name, quality=95)
        aus[name] = np.round(np.random.default_rng(number).uniform(0, 5, NUM_AUS), 2)
        split = "0" if number <= 8 else ("1" if number <= 10 else "2")
        partition.append(f"{name} {split}")
        style = "comma" if number % 2 else "comma_space"
        if number == 3:  # two faces, one row each: the tie goes to the more confident face
            write_image_csv(
                openface / "000003.csv", [(aus[name] * 0 + 1, 0.8, None), (aus[name], 0.95, None)], style=style
            )
        elif number == 4:  # low confidence
            write_image_csv(openface / "000004.csv", [(aus[name], 0.3, None)], style=style)
        elif number == 5:  # no CSV at all
            pass
        elif number == 6:  # not an image
            (images / name).write_bytes(b"this is not a jpeg")
            write_image_csv(openface / "000006.csv", [(aus[name], 0.95, None)], style=style)
        else:
            write_image_csv(
                openface / f"{number:06d}.csv", [(aus[name], 0.97, landmarks_around(50, 70, 130, 150))], style=style
            )
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    out = root / "shards"
    run_recipe_from_config(
        "celeba",
        root,
        "--images",
        images,
        "--partition",
        root / "list_eval_partition.txt",
        "--openface",
        openface,
        "--out",
        out,
        "--size",
        "64",
        "--shard_size",
        "3",
        "--workers",
        "2",
    )
    return out, aus


def test_splits_counts_and_samples(celeba):
    out, aus = celeba
    index = json.loads((out / "index.json").read_text())
    assert {split: info["samples"] for split, info in index["splits"].items()} == {"train": 5, "val": 2, "test": 2}
    assert index["kind"] == "faces" and index["extra"]["image_size"] == 64
    samples = {s["__key__"]: s for split in ("train", "val", "test") for s in read_split(out, split)}
    assert "celeba_000001" in samples
    for key, sample in samples.items():
        image = sample["jpg"]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert sample["au.npy"].dtype == np.float32 and sample["au.npy"].shape == (NUM_AUS,)
        name = sample["json"]["image"]
        assert np.allclose(sample["au.npy"], aus[name], atol=1e-6), key


def test_landmark_crop_centres_the_face(celeba):
    out, _ = celeba
    sample = next(s for s in read_split(out, "train") if s["__key__"] == "celeba_000001")
    brightness = sample["jpg"].astype(float).mean(axis=2)
    bright = np.argwhere(brightness > 120)
    centre = bright.mean(axis=0)
    # the crop's side is 1.6 x the landmarks' extent: the 80 px face becomes a 40 px square of 64,
    # centred horizontally and pushed down by the forehead margin (0.1 x extent)
    assert abs(len(bright) - 40 * 40) < 2 * 40
    assert abs(centre[1] - 31.5) < 1.5 and abs(centre[0] - (31.5 + 0.1 * 40)) < 1.5


def test_two_faces_pick_and_rejections(celeba):
    out, aus = celeba
    sample = next(s for s in read_split(out, "train") if s["__key__"] == "celeba_000003")
    assert np.allclose(sample["au.npy"], aus["000003.jpg"], atol=1e-6)
    reasons = {r["item"].rsplit("/", 1)[-1]: r["reason"] for r in read_rejected(out)}
    assert set(reasons) == {"000004.jpg", "000005.jpg", "000006.jpg"}
    assert reasons["000004.jpg"].startswith("no confident face")
    assert reasons["000005.jpg"].startswith("no OpenFace CSV")
    assert reasons["000006.jpg"].startswith("not a readable image")


def eye_landmarks(left: tuple[float, float], right: tuple[float, float]) -> np.ndarray:
    """68 points with both eye contours (36-41, 42-47) centred on the given eyes (OpenFace's integer-centred
    pixel coordinates), the rest spread below them."""
    points = landmarks_around(40, 100, 160, 200)
    ring = 4.0 * np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], axis=1)
    points[36:42], points[42:48] = np.add(left, ring) - 0.5, np.add(right, ring) - 0.5
    return points


def test_align_puts_the_eyes_at_the_targets_from_landmarks_or_the_detector(tmp_path):
    """--align: eyes from the landmarks land within 1 px (64 px crops, 2 px at 128) of the targets; without
    landmarks the face detector finds them; no face at all is a rejection."""
    images, openface = tmp_path / "img", tmp_path / "openface"
    images.mkdir()
    openface.mkdir()
    eyes = [(70.3, 96.8), (112.6, 90.1)]
    dots((WIDTH, HEIGHT), eyes, radius=3.0).save(images / "000001.png")
    write_image_csv(openface / "000001.csv", [(np.ones(NUM_AUS), 0.95, eye_landmarks(*eyes))])
    scene(400, 400, [(0.6, 0.0, (50.0, 40.0))])[0].save(images / "000002.png")
    Image.linear_gradient("L").save(images / "000003.png")
    for name in ("000002", "000003"):
        write_image_csv(openface / f"{name}.csv", [(np.ones(NUM_AUS), 0.95, None)])
    (tmp_path / "list.txt").write_text("000001.png 0\n000002.png 0\n000003.png 0\n")
    out = tmp_path / "shards"
    run_recipe(
        "celeba",
        *("--images", images, "--partition", tmp_path / "list.txt", "--openface", openface, "--out", out),
        *("--size", "64", "--workers", "1", "--align", "true"),
    )
    samples = {s["__key__"]: s["jpg"] for s in read_split(out, "train")}
    assert set(samples) == {"celeba_000001", "celeba_000002"}
    found = centroids(Image.fromarray(samples["celeba_000001"]))
    for (x, y), (tx, ty) in zip(found, EYE_TARGETS, strict=True):
        assert np.hypot(x - 64 * tx, y - 64 * ty) < 1.0, found
    assert [r["reason"] for r in read_rejected(out)] == ["no face found"]
