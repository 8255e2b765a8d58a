"""Faces and their eyes found with the Haar cascades bundled in ``opencv-python-headless`` (no download).

Coordinates are continuous pixel coordinates: (0, 0) is the top-left corner of the top-left pixel, so
pixel (i, j) spans [i, i + 1] x [j, j + 1] and its centre is (i + 0.5, j + 0.5).

Faces are looked for on a copy at most :data:`DETECT_SIDE` pixels on its longer side (fast on any
photo); eyes inside the upper part of each face box, at :data:`EYE_SEARCH_WIDTH` pixels of face width.
A face's eye on each side of the box is first the mean of the densest cluster of both eye cascades'
candidates there; where a side has none (glasses, closed eyes, a small face), both eyes are estimated from
the face box at :data:`EYES_IN_BOX` instead, so a face found always has two eyes. Either way each eye is
then moved onto its iris: the strongest dark iris-sized blob near it (:func:`refine_eyes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from PIL import Image

from cause_pl.faces.errors import DetectorUnavailableError
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
IRIS_PATCH_DISTANCE = 64
"""Eye distance (pixels) of the level patch in which irises are looked for."""
IRIS_WINDOW = (0.25, 0.19)
"""How far an eye may move onto its iris: fractions of the eye distance along the eye line and across it."""
IRIS_SIGMA = 0.06
"""The blur (fraction of the eye distance) at which a dark iris is a blob: an iris's radius is about 0.09 of it."""


@dataclass(frozen=True)
class Face:
    """A face found in a photo: its box (left, top, width, height) and the centres of its two eyes.

    ``left_eye`` is the eye on the image's left (the person's right eye); ``eyes_found`` is False when
    the eyes were estimated from the box (and then moved onto the irises, as found ones are).
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
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorUnavailableError(
            f"face alignment needs OpenCV's Haar cascades, which OpenCV {cv2.__version__} lacks; install "
            "opencv-python-headless 4.x (the package pins 4.14.0.94) or turn alignment off (animate: --no_align)"
        )
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


def refine_eyes(image: Image.Image, left_eye: Point, right_eye: Point) -> tuple[Point, Point]:
    """``left_eye`` and ``right_eye`` each moved to the strongest dark iris-sized blob within :data:`IRIS_WINDOW`
    of it (:func:`_blob`), to a fraction of a pixel, in a grey patch where the eyes are level and
    :data:`IRIS_PATCH_DISTANCE` apart; an eye with no dark blob there (closed, say) stays."""
    distance = _distance(left_eye, right_eye)
    if distance < 1.0:
        return left_eye, right_eye
    xs, ys = (left_eye[0], right_eye[0]), (left_eye[1], right_eye[1])
    left, top = max(0, int(min(xs) - 0.6 * distance)), max(0, int(min(ys) - 0.6 * distance))
    right, bottom = (
        min(side, int(max(zs) + 0.6 * distance) + 1) for side, zs in zip(image.size, (xs, ys), strict=True)
    )
    region = image.crop((left, top, right, bottom))  # inside the photo: past it, the patch repeats its edge
    grey: np.ndarray = np.asarray(region.convert("L"), dtype=np.float32)
    eyes = [complex(x - left, y - top) for x, y in (left_eye, right_eye)]
    size = IRIS_PATCH_DISTANCE  # the patch: 2 eye distances wide, 1 high, the eyes on its middle line
    targets = [complex(size / 2, size / 2), complex(3 * size / 2, size / 2)]
    a = (targets[1] - targets[0]) / (eyes[1] - eyes[0])
    b = targets[0] - a * eyes[0]
    if abs(a) < 1.0:  # shrinking: blur first, so the patch does not alias
        grey = cv2.GaussianBlur(grey, (0, 0), 0.5 / abs(a))
    matrix = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])
    matrix[:, 2] += matrix[:, :2].sum(axis=1) * 0.5 - 0.5  # on pixel indices, as OpenCV wants
    patch = cv2.warpAffine(grey, matrix, (2 * size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    blob = _blob(patch)
    found = []
    for eye, target in zip((left_eye, right_eye), targets, strict=True):
        peak = _peak(blob, target, (IRIS_WINDOW[0] * size, IRIS_WINDOW[1] * size))
        point = (complex(*peak) - b) / a + complex(left, top) if peak else complex(*eye)
        found.append((point.real, point.imag))
    return found[0], found[1]


def _blob(patch: np.ndarray) -> np.ndarray:
    """The determinant of the Hessian of ``patch`` blurred at :data:`IRIS_SIGMA` where it curves up both ways
    (a dark blob), else 0: high on a dark iris, low on an edge (hair) or a bar (eyebrow, glasses frame)."""
    smooth = cv2.GaussianBlur(patch, (0, 0), IRIS_SIGMA * IRIS_PATCH_DISTANCE)
    xx, yy, xy = (cv2.Sobel(smooth, cv2.CV_32F, dx, dy) for dx, dy in ((2, 0), (0, 2), (1, 1)))
    return np.where((xx > 0) & (yy > 0), xx * yy - xy**2, 0.0)


def _peak(score: np.ndarray, centre: complex, reach: tuple[float, float]) -> tuple[float, float] | None:
    """The highest point of ``score`` in the box ``reach`` (half width, half height) around ``centre``
    (continuous coordinates), refined by a parabola through it and its neighbours on each axis; None
    when nothing there is above 0."""
    x0, y0 = round(centre.real - reach[0]), round(centre.imag - reach[1])
    window = score[y0 : round(centre.imag + reach[1]), x0 : round(centre.real + reach[0])]
    row, column = np.unravel_index(int(np.argmax(window)), window.shape)
    if window[row, column] <= 0:
        return None
    offsets = []
    for line, at in ((window[row], column), (window[:, column], row)):
        if 0 < at < len(line) - 1:
            before, here, after = (float(v) for v in line[at - 1 : at + 2])
            curve = before - 2 * here + after
            offsets.append(0.5 * (before - after) / curve if curve < 0 else 0.0)
        else:
            offsets.append(0.0)
    return x0 + column + 0.5 + offsets[0], y0 + row + 0.5 + offsets[1]


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
        faces.append(Face(box, *refine_eyes(image, *(eyes or _box_eyes(box))), eyes_found=eyes is not None))
    return sorted(faces, key=lambda face: face.area, reverse=True)
