"""Hostile face images for ``animate``: not images, truncated, a decompression bomb, and the modes that
are easy to get wrong (16-bit grey, an animated GIF, CMYK), which must animate the face they show.

A face that decodes is checked against a reference: the same command on an 8-bit RGB PNG of the colour
the image holds (its first frame, its 16-bit value / 257, its CMYK converted) gives the same video.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cause_pl.cli.command import EXIT_DATA, EXIT_OS
from cause_pl.cli.main import main
from tests.builders.mp4_probe import decode_mp4
from tests.hostile.argv import animate
from tests.hostile.harness import Case, check_case, params


def animate_face(name):
    """``animate`` of an image decoding case: a flat colour has no face to find, so ``--no_align``."""
    return lambda k, w: [*animate(k, w, audio=k.short_m4a, face=getattr(k, name)), "--no_align"]


@functools.cache
def reference_frames(speech: Path, cause: Path, gan: Path, folder: Path, colour: tuple[int, int, int]) -> np.ndarray:
    """Frames ``animate`` makes of a plain 8-bit RGB PNG of ``colour`` (rendered once per colour)."""
    folder.mkdir(exist_ok=True)
    face = folder / f"rgb_{'_'.join(map(str, colour))}.png"
    Image.new("RGB", (40, 40), colour).save(face)
    out = face.with_suffix(".mp4")
    argv = ["animate", "--audio", speech, "--face", face, "--cause_ckpt", cause, "--ganimation_ckpt", gan]
    assert main([str(arg) for arg in [*argv, "--out", out, "--no_align"]]) == 0
    return decode_mp4(out).frames.astype(np.float64)


def looks_like(colour: tuple[int, int, int]):
    """Check: out.mp4 shows what the reference face of ``colour`` gives (not a white or inverted face).

    Within 3 levels on average: a lossy file (JPEG, CMYK) decodes a level or so off ``colour``, and the
    generator's edits may amplify that a little; a wrong conversion is off by a hundred levels or more.
    """

    def check(kit, work, stdout):
        folder = kit.short_m4a.parent / "reference_faces"
        expected = reference_frames(kit.short_m4a, kit.cause, kit.gan, folder, colour)
        frames = decode_mp4(work / "out.mp4").frames.astype(np.float64)
        assert frames.shape == expected.shape
        assert np.abs(frames - expected).mean() < 3.0, np.abs(frames - expected).mean()

    return check


CASES = [
    Case("animate-grey16-png-is-mid-grey", animate_face("grey16_png"), 0, makes=["out.mp4"],
         check=looks_like((128, 128, 128))),  # 32896 / 257 = 128, not clipped to white
    Case("animate-animated-gif-first-frame", animate_face("animated_gif"), 0, makes=["out.mp4"],
         check=looks_like((30, 30, 30))),  # the first frame is dark, the second near-white
    Case("animate-cmyk-jpeg", animate_face("cmyk_jpg"), 0, makes=["out.mp4"], check=looks_like((55, 55, 55))),
    Case("animate-truncated-png", animate_face("truncated_png"), EXIT_DATA,
         ["truncated.png", "not a readable image", "truncated"]),
    Case("animate-zero-byte-png", animate_face("empty_png"), EXIT_DATA, ["empty.png", "not a readable image"]),
    Case("animate-decompression-bomb", animate_face("bomb_png"), EXIT_DATA,
         ["bomb.png", "refused as a possible decompression bomb"]),
    Case("animate-directory-as-face", animate_face("face_dir"), EXIT_OS,
         ["--face: is a directory, not a file", "face_folder.png"]),
    Case("animate-photo-without-a-face", lambda k, w: animate(k, w, audio=k.short_m4a, face=k.cmyk_jpg), EXIT_DATA,
         ["cmyk.jpg", "no face found; --no_align animates the photo centre-cropped instead"]),
    Case("animate-missing-face", lambda k, w: animate(k, w, face=w / "nobody.png"), EXIT_OS,
         ["--face: file not found", "nobody.png"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_image_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
