"""Faces and their eyes found with the Haar cascades bundled in ``opencv-python-headless`` (no download).

Coordinates are continuous pixel coordinates: (0, 0) is the top-left corner of the top-left pixel, so
pixel (i, j) spans [i, i + 1] x [j, j + 1] and its centre is (i + 0.5, j + 0.5).

Faces are looked for on a copy at most :data:`DETECT_SIDE` pixels on its longer side (fast on any
photo); eyes inside the upper part of each face box, at :data:`EYE_SEARCH_WIDTH` pixels of face width.
A face's eye on each side of the box is the mean of the densest cluster of both eye cascades' candidates
there; where a side has none (glasses, closed eyes, a small face), both eyes are estimated from the face
box at :data:`EYES_IN_BOX` instead, so a face found always has two eyes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from PIL import Image

from cause_pl.media.image import to_rgb

Point = tuple[float, float]

DETECT_SIDE = 1024
"""Longer side (pixels) of the copy faces are looked for on."""
EYE_SEARCH_WIDTH = 240
"""Face-box width (pixels) the box is resized to before eyes are looked for."""
EYES_IN_BOX: tuple[Point, Point] = ((0.30, 0.375), (0.70, 0.375))
"""The eyes' usual places in a frontal-face cascade box, as fractions of its width and height."""
FACE_NEIGHBOURS = 8
"""The face cascade's ``minNeighbors``: overlapping hits needed for a face (higher: fewer false faces)."""
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
"""Both bundled eye cascades are asked (the second finds eyes behind glasses); each candidate counts."""
MIN_RELATIVE_WIDTH = 0.35
"""Faces narrower than this fraction of the widest are dropped: background faces and the cascade's false
hits (small, in clothing or texture), never the face a portrait is about."""
MIN_FACE_FRACTION = 0.05
"""Smallest face looked for, as a fraction of the shorter side of the (reduced) photo."""


@dataclass(frozen=True)
class Face:
    """A face found in a photo: its box (left, top, width, height) and the centres of its two eyes.

    ``left_eye`` is the eye on the image's left (the person's right eye); ``eyes_found`` is False when
    the eyes were estimated from the box.
    """

    box: tuple[float, float, float, float]
    left_eye: Point
    right_eye: Point
    eyes_found: bool

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
    if cascade.empty():
        raise RuntimeError(f"OpenCV's bundled cascade {name} did not load from {cv2.data.haarcascades}")  # type: ignore[attr-defined]
    return cascade


def _grey(image: Image.Image, scale: float) -> np.ndarray:
    """``image`` as histogram-equalised 8-bit grey, resized by ``scale``."""
    if scale != 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    return cv2.equalizeHist(np.asarray(image.convert("L")))


def _box_eyes(box: tuple[float, float, float, float]) -> tuple[Point, Point]:
    left, top, width, height = box
    (lx, ly), (rx, ry) = EYES_IN_BOX
    return (left + lx * width, top + ly * height), (left + rx * width, top + ry * height)


def _find_eyes(image: Image.Image, box: tuple[float, float, float, float]) -> tuple[Point, Point] | None:
    """The eye cascades' candidates in the upper 60 % of ``box`` on each side of it, within a quarter of the box
    width of the expected eye: the mean of the densest cluster; None when a side has no candidate."""
    left, top, width, height = box
    region = image.crop((round(left), round(top), round(left + width), round(top + 0.6 * height)))
    scale = EYE_SEARCH_WIDTH / max(region.width, 1)
    grey = _grey(region, scale)
    found = [_cascade(name).detectMultiScale(grey, scaleFactor=1.05, minNeighbors=1) for name in EYE_CASCADES]
    centres = [
        (round(left) + (x + w / 2) / scale, round(top) + (y + h / 2) / scale)
        for x, y, w, h in np.reshape(np.concatenate([np.reshape(boxes, (-1, 4)) for boxes in found]), (-1, 4))
    ]
    eyes = []
    for on_left, expected in zip((True, False), _box_eyes(box), strict=True):
        near = np.array(
            [c for c in centres if (c[0] < left + width / 2) == on_left and _distance(c, expected) < 0.25 * width]
        )
        if not len(near):
            return None
        close = np.hypot(*(near[:, None] - near[None]).transpose(2, 0, 1)) < 0.08 * width
        x, y = near[close[close.sum(axis=1).argmax()]].mean(axis=0)  # the densest cluster of candidates
        eyes.append((float(x), float(y)))
    return eyes[0], eyes[1]


def _distance(a: Point, b: Point) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def detect_faces(image: Image.Image) -> list[Face]:
    """The frontal faces in ``image`` (any mode), largest first, none under :data:`MIN_RELATIVE_WIDTH` of the
    largest."""
    image = to_rgb(image)
    scale = min(1.0, DETECT_SIDE / max(image.size))
    grey = _grey(image, scale)
    smallest = max(24, round(MIN_FACE_FRACTION * min(grey.shape)))
    found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=FACE_NEIGHBOURS, minSize=(smallest, smallest)
    )
    boxes = np.reshape(np.asarray(found, dtype=np.float64), (-1, 4)) / scale
    faces = []
    for x, y, w, h in boxes[boxes[:, 2] >= MIN_RELATIVE_WIDTH * boxes[:, 2].max(initial=0)].tolist():
        box = (x, y, w, h)
        eyes = _find_eyes(image, box)
        faces.append(Face(box, *(eyes or _box_eyes(box)), eyes_found=eyes is not None))
    return sorted(faces, key=lambda face: face.area, reverse=True)
