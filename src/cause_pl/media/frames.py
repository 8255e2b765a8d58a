"""Face frames as images: generator output to uint8 RGB, gif previews, png strips.

Frames are ``uint8`` RGB arrays ``(H, W, 3)`` or batches ``(N, H, W, 3)``; :func:`to_uint8_frames`
turns generator output (``(N, 3, H, W)`` in [-1, 1]) into that layout.

- **gif**: Pillow, every frame held in memory (for short previews only). GIF delays are whole
  centiseconds: frame boundaries are rounded to the nearest centisecond of ``i / fps``, so 25 fps
  is exactly 40 ms a frame and e.g. 30 fps alternates 30/40/30 ms without drifting.
- **png strip**: a few frames picked evenly over a sequence, side by side (for reports, W&B).

Both files are written atomically (:func:`cause_pl.media.atomic.atomic_output`): a failed write
leaves no partial file and the previous file at that path untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cause_pl.checks import positive_int
from cause_pl.media.atomic import atomic_output


def to_uint8_frames(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float images in [-1, 1] (any device/dtype) -> (N, H, W, 3) uint8 on CPU.

    Values are clamped to [-1, 1], scaled to [0, 255] and rounded half up, so -1 -> 0, 1 -> 255
    and 0 (127.5) -> 128. The conversion runs on the images' device; only uint8 is copied back.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor in [-1, 1], got {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
    scaled = images.detach().float().mul(127.5).add_(128.0)  # (x + 1) * 127.5, plus 0.5 to round
    if not bool(torch.isfinite(scaled).all()):
        raise ValueError("images contain NaN or infinite values")
    # Clamping to [0, 255] then truncating rounds half up; one pass writes the (N, H, W, 3) layout.
    channels_last = scaled.clamp_(0.0, 255.0).permute(0, 2, 3, 1)
    return channels_last.to(torch.uint8, memory_format=torch.contiguous_format).cpu().numpy()


def write_gif(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, loop: int = 0) -> Path:
    """Write ``frames`` (single frames or batches) as an animated GIF looping ``loop`` times (0 = forever).

    Delays are whole centiseconds, rounded per frame boundary so the total length stays
    ``n / fps`` (see the module docstring). Pillow merges consecutive identical frames.
    """
    positive_int("fps", fps)
    images = [Image.fromarray(image) for item in frames for image in as_frame_batch(item, "frames")]
    if not images:
        raise ValueError("frames is empty: a gif needs at least one frame")
    if len({image.size for image in images}) > 1:
        raise ValueError(f"frames differ in size: {sorted({image.size for image in images})} (W, H)")
    boundaries_cs = [round(i * 100 / fps) for i in range(len(images) + 1)]
    durations_ms = [10 * (end - start) for start, end in pairwise(boundaries_cs)]
    with atomic_output(path) as temporary:
        images[0].save(
            temporary, format="GIF", save_all=True, append_images=images[1:], duration=durations_ms, loop=loop
        )
    return Path(path)


def frame_strip(
    frames: Sequence[np.ndarray] | np.ndarray, count: int = 8, height: int | None = None, gap: int = 2
) -> Image.Image:
    """`count` frames picked evenly over the sequence (first and last included), side by side.

    ``frames``: a sequence of (H, W, 3) frames or one (N, H, W, 3) batch.

    Fewer frames than ``count`` are all shown; ``count=1`` shows the first. With ``height`` each
    tile is resized to that height, keeping its aspect ratio. Tiles are ``gap`` white pixels apart.
    """
    positive_int("count", count)
    if height is not None:
        positive_int("height", height)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    if len(frames) == 0:
        raise ValueError("frames is empty: a strip needs at least one frame")
    count = min(count, len(frames))
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    tiles = [Image.fromarray(_single_frame(frames[i], f"frames[{i}]")) for i in picks]
    if len({tile.size for tile in tiles}) > 1:
        raise ValueError(f"frames differ in size: {sorted({tile.size for tile in tiles})} (W, H)")
    if height is not None:
        width = max(1, round(tiles[0].width * height / tiles[0].height))
        tiles = [tile.resize((width, height), Image.Resampling.LANCZOS) for tile in tiles]
    tile_width, tile_height = tiles[0].size
    strip = Image.new("RGB", (count * tile_width + (count - 1) * gap, tile_height), "white")
    for position, tile in enumerate(tiles):
        strip.paste(tile, (position * (tile_width + gap), 0))
    return strip


def write_png_strip(
    path: str | Path, frames: Sequence[np.ndarray] | np.ndarray, count: int = 8, height: int | None = None
) -> Path:
    """Save ``frame_strip(frames, count, height)`` as an optimized PNG; returns the path."""
    strip = frame_strip(frames, count=count, height=height)
    with atomic_output(path) as temporary:
        strip.save(temporary, format="PNG", optimize=True)
    return Path(path)


def as_frame_batch(frames: np.ndarray, name: str) -> np.ndarray:
    """``frames`` as a C-contiguous uint8 (N, H, W, 3) batch; a single (H, W, 3) frame gets N=1."""
    if not isinstance(frames, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy uint8 array, got {type(frames).__name__} "
            "(convert generator output with to_uint8_frames)"
        )
    if frames.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {frames.dtype} (see to_uint8_frames)")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) or (N, H, W, 3) RGB, got {frames.shape}")
    if frames.shape[1] == 0 or frames.shape[2] == 0:
        raise ValueError(f"{name} has an empty frame size {frames.shape[1:3]} (H, W)")
    return np.ascontiguousarray(frames)


def _single_frame(frame: np.ndarray, name: str) -> np.ndarray:
    """``frame`` checked to be one uint8 (H, W, 3) RGB frame."""
    batch = as_frame_batch(frame, name)
    if frame.ndim != 3:
        raise ValueError(f"{name} must be one (H, W, 3) frame, got shape {frame.shape}")
    return batch[0]
