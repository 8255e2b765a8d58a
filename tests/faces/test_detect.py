"""Faces and eyes found in real photographs (a portrait placed at known scale, rotation and shift)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cause_pl.faces.align import EYE_TARGETS, eye_transform
from cause_pl.faces.detect import detect_faces, refine_eyes
from cause_pl.synthetic.face_identity import corpus_identity
from cause_pl.synthetic.faces import synth_face
from tests.faces.photos import apply, scene

SIZE = 128

PLACEMENTS = [  # (scale, degrees, shift) of the 512 x 600 portrait in an 800 x 600 picture
    (0.4, 0.0, (250.0, 150.0)),
    (0.5, 0.0, (200.0, 100.0)),
    (0.6, 8.0, (150.0, 150.0)),
    (0.6, -10.0, (150.0, 100.0)),
    (0.8, 0.0, (150.0, 100.0)),
    (0.8, 6.0, (150.0, 100.0)),
    (1.0, 3.0, (50.0, 50.0)),
    (0.45, 5.0, (250.0, 150.0)),
    (0.55, -5.0, (300.0, 120.0)),
    (0.65, -15.0, (200.0, 120.0)),
    (0.75, 0.0, (100.0, 60.0)),
    (0.9, -4.0, (60.0, 20.0)),
]


def crop_errors(face, eyes) -> list[float]:
    """Distance (pixels of the 128 px crop) between where the true eyes land and :data:`EYE_TARGETS`."""
    matrix = eye_transform(face.left_eye, face.right_eye, SIZE)
    targets = [(x * SIZE, y * SIZE) for x, y in EYE_TARGETS]
    return [
        float(np.hypot(*np.subtract(apply(matrix, eye), target))) for eye, target in zip(eyes, targets, strict=True)
    ]


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_the_portrait_is_found_with_its_eyes_close(placement):
    """Measured (128 px crop): 0.4 to 1.4 px, whether the eye cascades found the eyes or they came from the
    face box (glasses defeat the eye cascades at some sizes) before being moved onto the irises; 0.3 to 6.9 px
    before that refinement."""
    picture, [eyes] = scene(800, 600, [placement])
    faces = detect_faces(picture)
    assert len(faces) == 1
    assert max(crop_errors(faces[0], eyes)) < 2.0
    left, top, width, height = faces[0].box
    centre = np.mean(eyes, axis=0)
    assert left < centre[0] < left + width and top < centre[1] < top + height


def test_faces_come_largest_first_in_a_two_face_picture():
    picture, [big, small] = scene(1000, 600, [(0.9, 0.0, (0.0, 20.0)), (0.6, 0.0, (560.0, 120.0))])
    faces = detect_faces(picture)
    assert len(faces) == 2 and faces[0].area > faces[1].area
    for face, eyes in zip(faces, (big, small), strict=True):
        assert max(crop_errors(face, eyes)) < 2.0


def test_no_face_in_a_picture_without_one():
    assert detect_faces(scene(640, 480, [])[0]) == []
    assert detect_faces(Image.linear_gradient("L")) == []  # any mode


@pytest.mark.parametrize(("index", "size"), [(1, 256), (13, 256), (35, 512), (39, 256)])
def test_the_demo_s_cartoon_faces_have_their_eyes_close(index, size):
    """The synthetic faces' eyes are drawn at (0.5 -+ eye_spacing, 0.45) of the side; measured 0.2 to 1.9 px
    (face 35's eyes come from the face box: 9.5 px before the refinement onto the irises)."""
    face = synth_face(index, size=size)
    spacing = corpus_identity(face.identity_id).eye_spacing
    [found] = detect_faces(face.image)
    eyes = [((0.5 - spacing) * size, 0.45 * size), ((0.5 + spacing) * size, 0.45 * size)]
    assert max(crop_errors(found, eyes)) < 2.0


def test_refine_eyes_moves_each_eye_onto_its_dark_disc_and_leaves_an_eye_without_one():
    picture = Image.new("L", (200, 120), 200)
    draw = ImageDraw.Draw(picture)
    for x, y in ((60, 50), (140, 54)):  # pixels x - 6 to x + 6: the disc's centre is (x + 0.5, y + 0.5)
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=30)
    left, right = refine_eyes(picture, (66.0, 46.0), (133.0, 58.0))
    assert left == pytest.approx((60.5, 50.5), abs=0.2) and right == pytest.approx((140.5, 54.5), abs=0.2)
    blank = Image.new("L", (200, 120), 200)
    assert refine_eyes(blank, (66.0, 46.0), (133.0, 58.0)) == ((66.0, 46.0), (133.0, 58.0))
