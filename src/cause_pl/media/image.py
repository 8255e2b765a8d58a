"""Still face images for animation: any format Pillow reads, at any size, to the generator's input.

Preparation (documented for ``cause-pl animate``): an animated image gives its first frame; EXIF
orientation is applied; 16-bit images are scaled to 8 bits (value / 257, rounded: a 16-bit grey
of 32896 is 128); greyscale, 1-bit, palette and CMYK images become RGB; transparency (an alpha
channel or a palette's transparent colour) is composited onto white; a non-square image is
centre-cropped to a square on its shorter side; the square is resized (Lanczos) to the generator's
``size``. GANimation expects a face that fills the frame like CelebA's aligned crops: ``cause-pl
animate`` therefore finds and aligns the face (:mod:`cause_pl.faces`) and uses this centre crop only
under ``--no_align``. Images over Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) are
refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


class FaceImageError(ValueError):
    """A face image that cannot be used, naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.problem = problem


_INTEGER_GREY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
"""Pillow's modes of greyscale with more than 8 bits; ``convert("RGB")`` would clip them to 255."""

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` (any Pillow mode) as 8-bit RGB, with transparency composited onto white.

    16-bit greyscale (``I;16*``, and ``I`` as Pillow opens 16-bit files, clipped to 0..65535) is
    scaled to 8 bits as value / 257, rounded. 16-bit RGB(A) files are opened by Pillow as 8-bit
    RGB(A) already. Palette transparency (``info["transparency"]``) counts as alpha.
    """
    if image.mode in _INTEGER_GREY_MODES:
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257.0
        image = Image.fromarray(np.rint(grey).astype(np.uint8), mode="L")
    if image.mode in _ALPHA_MODES or (image.mode in ("P", "L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def square_face(image: Image.Image, size: int) -> Image.Image:
    """``image`` as an RGB ``size`` x ``size`` square: centre crop on the shorter side, then resize.

    Any mode: converted by :func:`to_rgb` after the EXIF orientation is applied.
    """
    if size < 1:
        raise ValueError(f"square_face: size must be >= 1, got {size}")
    image = to_rgb(ImageOps.exif_transpose(image))
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)


def image_to_array(image: Image.Image) -> np.ndarray:
    """PIL image (any mode, via :func:`to_rgb`) -> float32 (3, H, W) in [-1, 1], the generator's input range."""
    return np.asarray(to_rgb(image), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0


def load_face(path: str | Path, size: int) -> torch.Tensor:
    """The face image at ``path`` prepared as above: float32 (3, size, size) in [-1, 1]."""
    return torch.from_numpy(image_to_array(square_face(read_image(path), size))).contiguous()


def read_image(path: str | Path) -> Image.Image:
    """The first frame of the image at ``path``, fully decoded (a truncated file fails here), mode unchanged.

    FaceImageError for a missing file, a file Pillow cannot read, or one over the decompression-bomb limit.
    """
    path = Path(path)
    if not path.is_file():
        raise FaceImageError(path, "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # the first frame of an animated image
                image.load()
                return image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise FaceImageError(path, f"too many pixels, refused as a possible decompression bomb ({error})") from error
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError) as error:  # Pillow's bad-file errors
        raise FaceImageError(path, f"not a readable image ({error})") from error
