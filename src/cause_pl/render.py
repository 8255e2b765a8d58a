"""Generated face frames + speech audio -> media files: mp4 (with sound), gif, png strip.

Formats:

- **mp4**: H.264 video (libx264, yuv420p, constant-quality ``crf``) with the mono speech muxed as
  AAC (FFmpeg's native ``aac`` encoder, which takes 16 kHz directly). ``Mp4Writer`` streams: frames
  arrive in batches (the animator renders ~32 at a time), each batch is encoded at once together
  with the audio that covers the frames written so far, so packets interleave and memory stays
  bounded however long the speech is. Frame ``i`` has presentation time exactly ``i / fps`` s.
- **gif**: Pillow, every frame held in memory (for short previews only). GIF delays are whole
  centiseconds: frame boundaries are rounded to the nearest centisecond of ``i / fps``, so 25 fps
  is exactly 40 ms a frame and e.g. 30 fps alternates 30/40/30 ms without drifting.
- **png strip**: a few frames picked evenly over a sequence, side by side (for reports, W&B).

Frames are ``uint8`` RGB arrays ``(H, W, 3)`` or batches ``(N, H, W, 3)``; ``to_uint8_frames``
turns generator output (``(N, 3, H, W)`` in [-1, 1]) into that layout. libx264 with yuv420p needs
an even width and height: odd sizes are padded by repeating the last row / column (one pixel).

Audio duration vs frame count: the writer encodes the *whole* audio, whatever the number of
frames; the frame count is the caller's choice. To make the video as long as the audio, render
``video_frame_count(len(audio), sample_rate, fps)`` frames (the last one covers the audio tail);
a shorter video leaves players showing its last frame until the sound ends.
"""

from __future__ import annotations

from fractions import Fraction
from numbers import Integral
from pathlib import Path
from types import TracebackType
from typing import Iterable, Sequence

import av
import numpy as np
import torch
from PIL import Image

_AUDIO_CHUNK_SECONDS = 1
"""Longest audio piece handed to the encoder at once (bounds the copies made at ``close``)."""


def video_frame_count(num_samples: int, sample_rate: int, fps: int = 25) -> int:
    """Frames a video of this audio needs: ceil(num_samples * fps / sample_rate), at least 1."""
    _check_positive_int("sample_rate", sample_rate)
    _check_positive_int("fps", fps)
    if not _is_int(num_samples) or num_samples < 0:
        raise ValueError(f"num_samples must be an int >= 0, got {num_samples!r}")
    return max(1, int(-(-num_samples * fps // sample_rate)))


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


class Mp4Writer:
    """H.264 (libx264, yuv420p) video at `fps`, with the mono `audio` muxed as AAC. Context manager.

    ``threads``: libx264 encoder threads (None = libx264's automatic choice, about 1.5 per core).
    The file is written to ``<path>.partial`` and renamed to ``path`` by a successful ``close``, so
    ``path`` only ever holds a complete video. If the ``with`` block raises, the partial file is
    closed and removed, and the exception propagates.
    """

    def __init__(
        self,
        path: str | Path,
        fps: int = 25,
        audio: np.ndarray | torch.Tensor | None = None,
        sample_rate: int | None = None,
        crf: int = 18,
        audio_bitrate: int = 96_000,
        threads: int | None = None,
    ) -> None:
        _check_positive_int("fps", fps)
        if not _is_int(crf) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in 0..51 (libx264 quality, lower is better), got {crf!r}")
        _check_positive_int("audio_bitrate", audio_bitrate)
        if threads is not None:
            _check_positive_int("threads", threads)
        if (audio is None) != (sample_rate is None):
            raise ValueError("audio and sample_rate must be given together (or both left None)")
        if sample_rate is not None:
            _check_positive_int("sample_rate", sample_rate)
        self._audio = None if audio is None else _as_waveform(audio)
        self.path = _prepared_path(path)
        self.fps = int(fps)
        self.sample_rate = None if sample_rate is None else int(sample_rate)
        self._frames_written = 0
        self._samples_written = 0
        self._frame_size: tuple[int, int] | None = None  # (H, W) as given, before padding
        self._closed = False
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._container = av.open(str(self._partial), mode="w", format="mp4")
        try:
            self._video = self._container.add_stream("libx264", rate=self.fps)
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf)}
            self._video.time_base = self._video.codec_context.time_base = Fraction(1, self.fps)
            if threads is not None:
                self._video.codec_context.thread_count = threads
            if self.sample_rate is not None:
                self._audio_stream = self._container.add_stream("aac", rate=self.sample_rate, layout="mono")
                self._audio_stream.bit_rate = audio_bitrate
                self._audio_stream.time_base = Fraction(1, self.sample_rate)
        except BaseException:
            self._discard()
            raise

    @property
    def frames_written(self) -> int:
        """Video frames written so far."""
        return self._frames_written

    def write(self, frames: np.ndarray) -> None:
        """Encode uint8 RGB ``frames`` (N, H, W, 3) or one (H, W, 3), plus the audio they cover."""
        if self._closed:
            raise ValueError(f"{self.path}: write() after close()")
        batch = _as_frame_batch(frames, "frames")
        size = batch.shape[1:3]
        if self._frame_size is None:
            self._start_video(size)
        elif size != self._frame_size:
            raise ValueError(
                f"frames: size changed from {self._frame_size} to {size} (H, W); "
                "an mp4 has one frame size, fixed by the first write"
            )
        for image in _pad_to_even(batch):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self._frames_written
            self._container.mux(self._video.encode(frame))
            self._frames_written += 1
        if self._audio is not None:
            covered = -(-self._frames_written * self.sample_rate // self.fps)
            self._encode_audio_until(covered)

    def close(self) -> None:
        """Flush the encoders, write the rest of the audio and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._frame_size is None:
            self._discard()
            raise ValueError(f"{self.path}: no frames were written, so no mp4 was created")
        try:
            if self._audio is not None:
                self._encode_audio_until(len(self._audio))
                self._container.mux(self._audio_stream.encode(None))
            self._container.mux(self._video.encode(None))
            self._container.close()
        except BaseException:
            self._discard()
            raise
        self._partial.replace(self.path)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        """Release the file handle and remove the unfinished file."""
        try:
            self._container.close()
        finally:
            self._partial.unlink(missing_ok=True)

    def _start_video(self, size: tuple[int, int]) -> None:
        """Fix the frame size (padded to even) before the first packet writes the header."""
        self._frame_size = size
        height, width = size
        self._video.height = height + height % 2
        self._video.width = width + width % 2

    def _encode_audio_until(self, stop: int) -> None:
        """Encode audio samples [samples written, stop) in pieces of at most a second."""
        stop = min(stop, len(self._audio))
        chunk = _AUDIO_CHUNK_SECONDS * self.sample_rate
        while self._samples_written < stop:
            end = min(stop, self._samples_written + chunk)
            piece = self._audio[None, self._samples_written : end]
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._samples_written
            frame.time_base = self._audio_stream.time_base
            self._container.mux(self._audio_stream.encode(frame))
            self._samples_written = end


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    audio: np.ndarray | torch.Tensor | None = None,
    sample_rate: int | None = None,
    fps: int = 25,
    **kwargs: object,
) -> Path:
    """Write ``frames`` (single frames or batches, streamed) with ``audio`` to an mp4; returns the path.

    ``kwargs`` go to ``Mp4Writer`` (crf, audio_bitrate, threads).
    """
    with Mp4Writer(path, fps=fps, audio=audio, sample_rate=sample_rate, **kwargs) as writer:
        for item in frames:
            writer.write(item)
    return writer.path


def write_gif(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, loop: int = 0) -> Path:
    """Write ``frames`` (single frames or batches) as an animated GIF looping ``loop`` times (0 = forever).

    Delays are whole centiseconds, rounded per frame boundary so the total length stays
    ``n / fps`` (see the module docstring). Pillow merges consecutive identical frames.
    """
    _check_positive_int("fps", fps)
    images = [Image.fromarray(image) for item in frames for image in _as_frame_batch(item, "frames")]
    if not images:
        raise ValueError("frames is empty: a gif needs at least one frame")
    if len({image.size for image in images}) > 1:
        raise ValueError(f"frames differ in size: {sorted({image.size for image in images})} (W, H)")
    boundaries_cs = [round(i * 100 / fps) for i in range(len(images) + 1)]
    durations_ms = [10 * (end - start) for start, end in zip(boundaries_cs, boundaries_cs[1:])]
    path = _prepared_path(path)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=durations_ms, loop=loop)
    return path


def frame_strip(
    frames: Sequence[np.ndarray], count: int = 8, height: int | None = None, gap: int = 2
) -> Image.Image:
    """`count` frames picked evenly over the sequence (first and last included), side by side.

    Fewer frames than ``count`` are all shown; ``count=1`` shows the first. With ``height`` each
    tile is resized to that height, keeping its aspect ratio. Tiles are ``gap`` white pixels apart.
    """
    _check_positive_int("count", count)
    if height is not None:
        _check_positive_int("height", height)
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
    path: str | Path, frames: Sequence[np.ndarray], count: int = 8, height: int | None = None
) -> Path:
    """Save ``frame_strip(frames, count, height)`` as an optimized PNG; returns the path."""
    strip = frame_strip(frames, count=count, height=height)
    path = _prepared_path(path)
    strip.save(path, format="PNG", optimize=True)
    return path


def _as_frame_batch(frames: np.ndarray, name: str) -> np.ndarray:
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
    batch = _as_frame_batch(frame, name)
    if frame.ndim != 3:
        raise ValueError(f"{name} must be one (H, W, 3) frame, got shape {frame.shape}")
    return batch[0]


def _pad_to_even(batch: np.ndarray) -> np.ndarray:
    """Repeat the last row / column of an odd-sized batch so yuv420p can hold it."""
    pad_rows, pad_cols = batch.shape[1] % 2, batch.shape[2] % 2
    if not (pad_rows or pad_cols):
        return batch
    return np.pad(batch, ((0, 0), (0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")


def _as_waveform(audio: np.ndarray | torch.Tensor) -> np.ndarray:
    """A 1-D float waveform (numpy or torch) as contiguous float32, clipped to [-1, 1]."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu()
        audio = (audio.float() if audio.is_floating_point() else audio).numpy()  # numpy has no bfloat16
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"audio must be a numpy array or torch tensor, got {type(audio).__name__}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise TypeError(f"audio must be a float waveform in [-1, 1], got dtype {audio.dtype}")
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be a non-empty 1-D (mono) waveform, got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)


def _is_int(value: object) -> bool:
    """An integer (Python or numpy), but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_positive_int(name: str, value: object) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _prepared_path(path: str | Path) -> Path:
    """``path`` as a Path whose parent folder exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
