"""Generated crops pasted back into the photo: the photo's size, unchanged outside the crop's square."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cause_pl.faces.align import aligned_face
from cause_pl.faces.paste import FEATHER, PasteBack, feather_mask
from tests.faces.photos import apply, scene

SIZE = 128


@pytest.fixture(scope="module")
def face():
    picture, _ = scene(701, 480, [(0.7, 8.0, (150.0, 60.0))])  # an odd width: the photo's size is kept
    return aligned_face(picture, SIZE)


def test_feather_mask_is_one_inside_and_ramps_to_zero_at_the_edges():
    mask = feather_mask(SIZE)
    ramp = round(FEATHER * SIZE)
    assert mask.shape == (SIZE, SIZE) and np.array_equal(mask, mask.T) and np.array_equal(mask, mask[::-1])
    assert (mask[ramp:-ramp, ramp:-ramp] == 1).all()
    assert mask[0, SIZE // 2] < 0.05 and mask[0, 0] < 0.05 and np.all(np.diff(mask[SIZE // 2, : ramp + 1]) >= 0)


def test_a_frame_pasted_back_changes_only_the_crops_square(face):
    photo = np.asarray(face.photo)
    red = np.zeros((SIZE, SIZE, 3), np.uint8)
    red[..., 0] = 255
    out = PasteBack(face)(red)
    assert out.shape == photo.shape == (480, 701, 3) and out.dtype == np.uint8
    inverse = cv2.invertAffineTransform(face.matrix)
    corners = np.array([apply(inverse, corner) for corner in [(0, 0), (SIZE, 0), (0, SIZE), (SIZE, SIZE)]])
    changed = np.argwhere((out != photo).any(axis=2))[:, ::-1] + 0.5  # (x, y) pixel centres
    assert (changed >= corners.min(axis=0) - 1).all() and (changed <= corners.max(axis=0) + 1).all()
    x, y = apply(inverse, (SIZE / 2, SIZE / 2))
    assert tuple(out[int(y), int(x)]) == (255, 0, 0)  # the crop's centre is the new frame's
    x, y = apply(inverse, (-3.0, SIZE / 2))  # just outside the square: the photo's own pixel
    assert np.array_equal(out[int(y), int(x)], photo[int(y), int(x)])


def test_the_unedited_crop_pasted_back_is_close_to_the_photo(face):
    paste = PasteBack(face)
    left, top, right, bottom = paste.box
    difference = np.abs(paste(np.asarray(face.crop)).astype(float) - np.asarray(face.photo))
    assert difference[top:bottom, left:right].mean() < 4.0  # a 128 px crop is blurrier than the photo, no more
    with pytest.raises(ValueError, match="frame must have shape"):
        paste(np.zeros((SIZE, SIZE + 1, 3), np.uint8))
