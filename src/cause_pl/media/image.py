"""Still face images for animation: any format Pillow reads, at any size, to the generator's input.

Preparation (documented for ``cause-pl animate``): EXIF orientation is applied; greyscale, palette
and CMYK images become RGB; transparency is composited onto white; a non-square image is
centre-cropped to a square on its shorter side; the square is resized (Lanczos) to the generator's
``size``. GANimation expects a face that fills the frame like CelebA's aligned crops, so a face
photographed from further away should be cropped around the face first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


class FaceImageError(ValueError):
    """A face image that cannot be used, naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def square_face(image: Image.Image, size: int) -> Image.Image:
    """``image`` as an RGB ``size`` x ``size`` square: centre crop on the shorter side, then resize."""
    if size < 1:
        raise ValueError(f"square_face: size must be >= 1, got {size}")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS)


def image_to_array(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> float32 (3, H, W) in [-1, 1], the generator's input range."""
    return np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0


def load_face(path: str | Path, size: int) -> torch.Tensor:
    """The face image at ``path`` prepared as above: float32 (3, size, size) in [-1, 1]."""
    path = Path(path)
    if not path.is_file():
        raise FaceImageError(path, "no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return torch.from_numpy(image_to_array(square_face(image, size))).contiguous()
    except (UnidentifiedImageError, OSError) as error:
        raise FaceImageError(path, f"not a readable image ({error})") from error
