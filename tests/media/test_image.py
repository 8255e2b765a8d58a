"""Still face images of every Pillow mode, from real files, checked pixel by pixel."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cause_pl.media.image import FaceImageError, image_to_array, load_face, square_face, to_rgb

SIZE = 8
WHITE = (255, 255, 255)


def as_rgb_uint8(face: torch.Tensor) -> np.ndarray:
    """load_face output (3, H, W) in [-1, 1] back to (H, W, 3) uint8 values."""
    return np.rint((face.numpy().transpose(1, 2, 0) + 1.0) * 127.5).astype(np.int64)


def halves(face: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The colour of the left and of the right half of a face made of two flat halves."""
    rgb = as_rgb_uint8(face)
    left, right = rgb[:, : SIZE // 2].reshape(-1, 3), rgb[:, SIZE // 2 :].reshape(-1, 3)
    assert (left == left[0]).all() and (right == right[0]).all()
    return tuple(int(v) for v in left[0]), tuple(int(v) for v in right[0])


def flat_colour(face: torch.Tensor) -> tuple[int, ...]:
    left, right = halves(face)
    assert left == right
    return left


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB or RGBA PNG (Pillow cannot write one): (H, W, 3 or 4) uint16."""
    height, width, channels = pixels.shape
    colour_type = {3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def two_halves(mode: str, left: object, right: object, size: int = SIZE) -> Image.Image:
    image = Image.new(mode, (size, size), left)  # type: ignore[arg-type]
    image.paste(right, (size // 2, 0, size, size))  # type: ignore[arg-type]
    return image


# --- 16-bit ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grey16", "grey8"),
    [(32896, 128), (257 * 77, 77), (30000, 117), (0, 0), (65535, 255)],
)
def test_16_bit_grey_png_is_scaled_to_8_bits_not_white(tmp_path, grey16, grey8):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((SIZE, SIZE), grey16, dtype=np.uint16)).save(path)
    with Image.open(path) as written:
        assert written.mode == "I;16"
    assert flat_colour(load_face(path, SIZE)) == (grey8,) * 3  # 30000 / 257 = 116.7 -> 117


def test_mid_grey_16_bit_face_stays_mid_grey_when_resized(tmp_path):
    path = tmp_path / "face16.png"
    image = np.full((3 * SIZE, 2 * SIZE), 32896, dtype=np.uint16)
    Image.fromarray(image).save(path)
    rgb = as_rgb_uint8(load_face(path, SIZE))
    assert (rgb == 128).all()


@pytest.mark.parametrize("mode", ["I;16B", "I"])
def test_other_16_bit_grey_modes_from_tiff(tmp_path, mode):
    path = tmp_path / f"grey-{mode.replace(';', '')}.tif"
    two_halves(mode, 257 * 200, 257 * 10).save(path)
    with Image.open(path) as written:
        assert written.mode == mode
    assert halves(load_face(path, SIZE)) == ((200,) * 3, (10,) * 3)


def test_16_bit_rgb_png_is_scaled_to_8_bits(tmp_path):
    pixels = np.zeros((SIZE, SIZE, 3), dtype=np.uint16)
    pixels[:, : SIZE // 2] = (257 * 200, 257 * 50, 257 * 7)
    pixels[:, SIZE // 2 :] = (65535, 0, 32896)
    path = write_png16(tmp_path / "rgb48.png", pixels)
    assert halves(load_face(path, SIZE)) == ((200, 50, 7), (255, 0, 128))


def test_16_bit_rgba_png_composites_transparency_onto_white(tmp_path):
    pixels = np.zeros((SIZE, SIZE, 4), dtype=np.uint16)
    pixels[:, : SIZE // 2] = (257 * 30, 257 * 60, 257 * 90, 65535)  # opaque
    pixels[:, SIZE // 2 :] = (257 * 30, 257 * 60, 257 * 90, 0)  # fully transparent
    path = write_png16(tmp_path / "rgba64.png", pixels)
    assert halves(load_face(path, SIZE)) == ((30, 60, 90), WHITE)


# --- 8-bit modes -------------------------------------------------------------------------------


def test_palette_png_with_a_transparent_index(tmp_path):
    image = two_halves("P", 0, 1)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    path = tmp_path / "palette.png"
    image.save(path, transparency=1)
    with Image.open(path) as written:
        assert written.mode == "P" and written.info["transparency"] == 1
    assert halves(load_face(path, SIZE)) == ((10, 20, 30), WHITE)


def test_palette_png_without_transparency(tmp_path):
    image = two_halves("P", 0, 1)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    path = tmp_path / "palette-opaque.png"
    image.save(path)
    assert halves(load_face(path, SIZE)) == ((10, 20, 30), (200, 100, 50))


def test_palette_png_with_per_entry_alpha(tmp_path):
    image = two_halves("P", 0, 1)
    image.putpalette([40, 80, 120, 200, 100, 50] + [0] * 762)
    path = tmp_path / "palette-alpha.png"
    image.save(path, transparency=bytes([255, 0]))  # a tRNS chunk: entry 0 opaque, entry 1 transparent
    with Image.open(path) as written:
        assert written.mode == "P"
    assert halves(load_face(path, SIZE)) == ((40, 80, 120), WHITE)


def test_palette_gif_with_a_transparent_index(tmp_path):
    image = two_halves("P", 0, 1)
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    path = tmp_path / "palette.gif"
    image.save(path, transparency=1)
    assert halves(load_face(path, SIZE)) == ((10, 20, 30), WHITE)


def test_cmyk_tiff(tmp_path):
    path = tmp_path / "cmyk.tif"
    two_halves("CMYK", (0, 255, 255, 0), (0, 0, 0, 255)).save(path)  # red | black
    with Image.open(path) as written:
        assert written.mode == "CMYK"
    assert halves(load_face(path, SIZE)) == ((255, 0, 0), (0, 0, 0))


def test_la_png_composites_transparency_onto_white(tmp_path):
    path = tmp_path / "la.png"
    two_halves("LA", (100, 255), (100, 0)).save(path)
    with Image.open(path) as written:
        assert written.mode == "LA"
    assert halves(load_face(path, SIZE)) == ((100, 100, 100), WHITE)


def test_grey_png_is_grey(tmp_path):
    path = tmp_path / "grey.png"
    two_halves("L", 33, 220).save(path)
    assert halves(load_face(path, SIZE)) == ((33,) * 3, (220,) * 3)


def test_one_bit_png_is_black_and_white(tmp_path):
    path = tmp_path / "bits.png"
    two_halves("1", 0, 1).save(path)
    with Image.open(path) as written:
        assert written.mode == "1"
    assert halves(load_face(path, SIZE)) == ((0, 0, 0), WHITE)


def test_rgba_png_composites_transparency_onto_white(tmp_path):
    path = tmp_path / "rgba.png"
    two_halves("RGBA", (1, 2, 3, 255), (1, 2, 3, 0)).save(path)
    assert halves(load_face(path, SIZE)) == ((1, 2, 3), WHITE)


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_image_gives_its_first_frame(tmp_path, suffix):
    path = tmp_path / f"animated{suffix}"
    frames = [Image.new("RGB", (SIZE, SIZE), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    options = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, **options)
    with Image.open(path) as written:
        assert getattr(written, "n_frames", 1) == 3
        written.seek(2)  # leaving an opened image on a later frame does not matter to load_face
    assert flat_colour(load_face(path, SIZE)) == (255, 0, 0)


# --- in-memory images --------------------------------------------------------------------------


def test_square_face_and_image_to_array_convert_16_bit_images_in_memory():
    image = Image.fromarray(np.full((SIZE, 2 * SIZE), 32896, dtype=np.uint16))
    assert image.mode == "I;16"
    square = square_face(image, SIZE)
    assert square.mode == "RGB" and square.size == (SIZE, SIZE)
    assert (np.asarray(square) == 128).all()
    array = image_to_array(image)
    assert array.shape == (3, SIZE, 2 * SIZE)
    assert np.allclose(array, 128 / 127.5 - 1.0, rtol=0, atol=1e-6)


def test_to_rgb_keeps_rgb_pixels():
    image = Image.fromarray(np.arange(SIZE * SIZE * 3, dtype=np.uint8).reshape(SIZE, SIZE, 3))
    assert np.array_equal(np.asarray(to_rgb(image)), np.asarray(image))


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pixels", [150, 1000])  # over the warning limit (100), over the error limit (200)
def test_decompression_bomb_is_a_face_image_error_naming_the_file(tmp_path, monkeypatch, pixels):
    path = tmp_path / "bomb.png"
    side = int(pixels**0.5) + 1
    Image.new("RGB", (side, side), (9, 9, 9)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(FaceImageError, match=r"bomb\.png: .*decompression bomb"):
        load_face(path, SIZE)


def test_missing_and_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(FaceImageError, match=r"nothere\.png: no such file"):
        load_face(tmp_path / "nothere.png", SIZE)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(FaceImageError, match=r"junk\.png: not a readable image"):
        load_face(junk, SIZE)
