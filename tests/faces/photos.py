"""Test photographs with known eye positions: a real portrait (matplotlib's bundled ``grace_hopper.jpg``)
placed, scaled and rotated at known parameters inside a larger picture; and bright dots as eyes, for the
geometry alone."""

from __future__ import annotations

import cmath
import math

import cv2
import numpy as np
from matplotlib import cbook
from PIL import Image, ImageDraw

from cause_pl.faces.align import pixel_centred

PORTRAIT_EYES = ((222.6, 188.8), (305.0, 186.8))
"""Pupil centres in grace_hopper.jpg (512 x 600), read off an 8x zoom (continuous coordinates, +-1 px)."""


def portrait() -> Image.Image:
    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """2 x 3 matrix: scale and rotate (counter-clockwise on screen for positive degrees) about the origin,
    then shift."""
    a = scale * cmath.exp(-1j * math.radians(degrees))
    return np.array([[a.real, -a.imag, shift[0]], [a.imag, a.real, shift[1]]])


def apply(matrix: np.ndarray, point: tuple[float, float]) -> tuple[float, float]:
    x, y = matrix @ np.array([point[0], point[1], 1.0])
    return float(x), float(y)


def place(
    canvas: Image.Image, face: Image.Image, matrix: np.ndarray, eyes: tuple = PORTRAIT_EYES
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Draw ``face`` warped by ``matrix`` onto ``canvas`` (in place, inside the face's own oval); return
    where its eyes land."""
    size = canvas.size
    warped = cv2.warpAffine(np.asarray(face), pixel_centred(matrix), size, flags=cv2.INTER_AREA)
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse((60, 20, face.width - 60, face.height - 40), fill=255)
    warped_mask = cv2.warpAffine(np.asarray(mask), pixel_centred(matrix), size, flags=cv2.INTER_LINEAR)
    canvas.paste(Image.fromarray(warped), (0, 0), Image.fromarray(warped_mask))
    return apply(matrix, eyes[0]), apply(matrix, eyes[1])


def scene(
    width: int, height: int, placements: list[tuple[float, float, tuple[float, float]]], seed: int = 0
) -> tuple[Image.Image, list[tuple[tuple[float, float], tuple[float, float]]]]:
    """A ``width`` x ``height`` noisy grey-green background with the portrait placed at each
    (scale, degrees, shift); the picture and each placement's eye positions."""
    rng = np.random.default_rng(seed)
    background = rng.normal((110, 130, 100), 20, (height, width, 3)).clip(0, 255).astype(np.uint8)
    canvas = Image.fromarray(cv2.GaussianBlur(background, (0, 0), 3))
    face = portrait()
    return canvas, [place(canvas, face, similarity(*placement)) for placement in placements]


def dots(size: tuple[int, int], eyes: list[tuple[float, float]], radius: float) -> Image.Image:
    """Black picture with a white disc (antialiased by 4x supersampling) at each eye."""
    big = Image.new("L", (size[0] * 4, size[1] * 4), 0)
    draw = ImageDraw.Draw(big)
    for x, y in eyes:
        draw.ellipse((4 * (x - radius), 4 * (y - radius), 4 * (x + radius), 4 * (y + radius)), fill=255)
    return big.resize(size, Image.Resampling.BOX).convert("RGB")


def centroids(crop: Image.Image) -> list[tuple[float, float]]:
    """Brightness-weighted centres of the left and right half of ``crop`` (continuous coordinates)."""
    grey = np.asarray(crop.convert("L"), dtype=np.float64)
    grey = np.where(grey > 40, grey, 0.0)
    ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]] + 0.5
    found = []
    for half in (xs < crop.width / 2, xs >= crop.width / 2):
        weight = grey * half
        found.append((float((weight * xs).sum() / weight.sum()), float((weight * ys).sum() / weight.sum())))
    return found
