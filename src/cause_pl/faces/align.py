"""The eye-based similarity crop, the way CelebA's aligned images are made (*docs/design.md, "Face alignment"*).

A similarity transform (rotation, uniform scale, shift) takes the two eye centres to :data:`EYE_TARGETS`
in the output square: eyes level, a fixed distance apart and at a fixed height, whatever the photo's
framing. Coordinates are continuous pixel coordinates as in :mod:`cause_pl.faces.detect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from cause_pl.faces.detect import Point, detect_faces
from cause_pl.media.image import FaceImageError, image_to_array, load_face, read_image, to_rgb

EYE_TARGETS: tuple[Point, Point] = ((0.35, 0.42), (0.65, 0.42))
"""Where the eye on the image's left and the one on its right land, as fractions of the output side:
0.30 of the side apart, 0.42 of it from the top (at 128 px: (44.8, 53.8) and (83.2, 53.8))."""


class NoFaceError(FaceImageError):
    """An image in which the face detector finds no face."""


def eye_transform(left_eye: Point, right_eye: Point, size: int) -> np.ndarray:
    """The 2 x 3 similarity matrix taking ``left_eye`` and ``right_eye`` (image) to :data:`EYE_TARGETS`
    in a ``size`` square. ValueError when the eyes coincide."""
    source_left, source_right = complex(*left_eye), complex(*right_eye)
    if source_left == source_right:
        raise ValueError(f"eye_transform: both eyes at {left_eye}")
    target_left, target_right = (complex(x * size, y * size) for x, y in EYE_TARGETS)
    a = (target_right - target_left) / (source_right - source_left)
    b = target_left - a * source_left
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(image: Image.Image, left_eye: Point, right_eye: Point, size: int) -> Image.Image:
    """The RGB ``size`` square of ``image`` with the eyes at :data:`EYE_TARGETS` (bicubic; the photo's
    edge pixels repeated past its border). A large photo is first reduced by whole box-filtered factors
    so that shrinking never aliases."""
    image = to_rgb(image)
    factor = int(1.0 / np.hypot(*eye_transform(left_eye, right_eye, size)[:, 0]))
    if factor >= 2:  # pixel block [k i, k i + k] becomes [i, i + 1]: coordinates divide exactly
        image = image.reduce(factor)
        left_eye, right_eye = (
            (left_eye[0] / factor, left_eye[1] / factor),
            (right_eye[0] / factor, right_eye[1] / factor),
        )
    matrix = pixel_centred(eye_transform(left_eye, right_eye, size))
    pixels = cv2.warpAffine(
        np.asarray(image), matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return Image.fromarray(pixels)


def pixel_centred(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` on continuous coordinates as OpenCV wants it: on pixel indices (centres at integers)."""
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2].sum(axis=1) * 0.5 - 0.5
    return shifted


@dataclass(frozen=True)
class AlignedFace:
    """A face cut out of a photo: the upright RGB ``photo``, the aligned square ``crop`` and the ``matrix``
    (2 x 3, continuous coordinates) that takes photo points to crop points."""

    photo: Image.Image
    crop: Image.Image
    matrix: np.ndarray

    def tensor(self) -> torch.Tensor:
        """The crop as the generator's float32 (3, size, size) input in [-1, 1]."""
        return torch.from_numpy(image_to_array(self.crop)).contiguous()


def aligned_face(image: Image.Image, size: int, face_index: int = 0, source: str | Path = "image") -> AlignedFace:
    """Face ``face_index`` (0 = the largest) of ``image`` (EXIF orientation applied) aligned at ``size``.

    :class:`NoFaceError` naming ``source`` when no face is found; FaceImageError when fewer than
    ``face_index + 1`` are.
    """
    image = to_rgb(ImageOps.exif_transpose(image))
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError(source, "no face found")
    if not 0 <= face_index < len(faces):
        raise FaceImageError(source, f"face_index {face_index} asked for, but {len(faces)} face(s) found")
    eyes = faces[face_index].left_eye, faces[face_index].right_eye
    return AlignedFace(image, align_face(image, *eyes, size), eye_transform(*eyes, size))


def load_aligned_face(path: str | Path, size: int, face_index: int = 0) -> AlignedFace:
    """:func:`aligned_face` of the image file at ``path`` (read as :func:`cause_pl.media.image.read_image` reads)."""
    return aligned_face(read_image(path), size, face_index, source=path)


def prepare_face(path: str | Path, size: int, align: bool = False, face_index: int = 0) -> torch.Tensor:
    """The face image at ``path`` as the generator's float32 (3, size, size) input in [-1, 1]: face
    ``face_index`` found and aligned, or (``align`` False) the photo centre-cropped as
    :func:`cause_pl.media.image.load_face` does."""
    return load_aligned_face(path, size, face_index).tensor() if align else load_face(path, size)
