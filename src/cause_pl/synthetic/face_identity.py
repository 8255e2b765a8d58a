"""Synthetic face identities: what stays fixed for one person across expressions (colours, shape).

Deterministic from ``(seed, identity_id)``, like CelebA's celebrities that repeat across many images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_IDENTITY_STREAM = 3


Colour = tuple[int, int, int]


def rgb(values: Iterable[float]) -> Colour:
    """Three channel values as a colour, each truncated to an int."""
    red, green, blue = (int(value) for value in values)
    return red, green, blue


@dataclass(frozen=True)
class FaceIdentity:
    """What stays fixed for one person across expressions. Lengths are fractions of the image."""

    skin: Colour
    hair: Colour
    eyes: Colour
    lips: Colour
    background: Colour
    face_width: float
    face_height: float
    jaw_width: float
    hair_style: int
    """0 short, 1 long, 2 bald with side hair."""
    eye_spacing: float
    brow_thickness: float
    mouth_width: float
    clothes: Colour


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """A random plausible identity."""
    tone = rng.uniform()
    skin = np.array([255, 224, 196]) * (1 - tone) + np.array([120, 80, 55]) * tone
    hair_palette = [(30, 22, 18), (85, 55, 30), (160, 110, 60), (215, 180, 110), (120, 40, 25), (150, 150, 150)]
    eye_palette = [(70, 45, 25), (40, 90, 140), (60, 110, 70), (100, 85, 60)]

    def pick(palette: Sequence[Colour]) -> Colour:
        return palette[int(rng.integers(len(palette)))]

    def colour(low: int, high: int) -> Colour:
        return rgb(rng.integers(low, high, size=3))

    lips = np.clip(skin * np.array([0.95, 0.62, 0.62]) + rng.normal(0, 8, 3), 0, 255)
    return FaceIdentity(
        skin=rgb(skin),
        hair=pick(hair_palette),
        eyes=pick(eye_palette),
        lips=rgb(lips),
        background=colour(60, 230),
        face_width=float(rng.uniform(0.50, 0.62)),
        face_height=float(rng.uniform(0.70, 0.78)),
        jaw_width=float(rng.uniform(0.55, 0.85)),
        hair_style=int(rng.integers(3)),
        eye_spacing=float(rng.uniform(0.17, 0.21)),
        brow_thickness=float(rng.uniform(0.018, 0.03)),
        mouth_width=float(rng.uniform(0.17, 0.22)),
        clothes=colour(20, 200),
    )


def corpus_identity(identity_id: int, *, seed: int = 0) -> FaceIdentity:
    """Identity ``identity_id`` of the corpus with ``seed`` (the person in faces ``identity_id + k * identities``)."""
    return random_identity(np.random.default_rng([seed, _IDENTITY_STREAM, identity_id]))
