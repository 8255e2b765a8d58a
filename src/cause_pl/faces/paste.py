"""Generated face crops put back into the photo they were cut from (``cause-pl animate --paste_back``).

Each crop is warped back with the inverse of its similarity transform (bicubic) and blended into the
photo through the crop's square, feathered over :data:`FEATHER` of its side at the edges (so no seam
shows); pixels outside that square are the photo's own, unchanged. Only the square's bounding box in
the photo is warped per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from cause_pl.faces.align import AlignedFace, pixel_centred

FEATHER = 0.12
"""Width of the blend ramp at the crop's edges, as a fraction of its side."""


def feather_mask(size: int) -> np.ndarray:
    """float32 (size, size): 1 inside, falling linearly to 0 over the outer :data:`FEATHER` of the side."""
    centres = np.arange(size) + 0.5
    ramp = np.clip(np.minimum(centres, size - centres) / max(FEATHER * size, 1e-9), 0.0, 1.0)
    return np.minimum.outer(ramp, ramp).astype(np.float32)


class PasteBack:
    """Callable: a generated uint8 (S, S, 3) frame of ``face`` -> the photo with it pasted back, uint8 (H, W, 3)."""

    def __init__(self, face: AlignedFace) -> None:
        self.photo = np.asarray(face.photo, dtype=np.uint8)
        self.size = face.crop.width
        height, width = self.photo.shape[:2]
        inverse = cv2.invertAffineTransform(face.matrix)
        corners = np.array([[0, 0, 1], [self.size, 0, 1], [0, self.size, 1], [self.size, self.size, 1]], float)
        footprint = corners @ inverse.T
        left, top = np.clip(np.floor(footprint.min(axis=0)).astype(int), 0, (width, height))
        right, bottom = np.clip(np.ceil(footprint.max(axis=0)).astype(int), 0, (width, height))
        self.box = (int(left), int(top), int(right), int(bottom))
        local = face.matrix.copy()  # box pixel coordinates -> crop
        local[:, 2] += face.matrix[:, :2] @ (left, top)
        self.matrix = pixel_centred(local)
        self.mask = self._warp(feather_mask(self.size), cv2.INTER_LINEAR, cv2.BORDER_CONSTANT)[..., None]

    def _warp(self, crop: np.ndarray, interpolation: int, border: int) -> np.ndarray:
        left, top, right, bottom = self.box
        return cv2.warpAffine(
            crop,
            self.matrix,
            (right - left, bottom - top),
            flags=interpolation | cv2.WARP_INVERSE_MAP,
            borderMode=border,
        )

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape != (self.size, self.size, 3):
            raise ValueError(f"frame must have shape ({self.size}, {self.size}, 3), got {frame.shape}")
        left, top, right, bottom = self.box
        out = self.photo.copy()
        if right > left and bottom > top:
            warped = self._warp(frame, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE).astype(np.float32)
            region = out[top:bottom, left:right].astype(np.float32)
            out[top:bottom, left:right] = np.rint(region + self.mask * (warped - region)).clip(0, 255).astype(np.uint8)
        return out
