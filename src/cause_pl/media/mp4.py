"""Generated face frames + speech audio -> an mp4 with sound, written as the frames arrive.

H.264 video (libx264, yuv420p, constant-quality ``crf``) with the mono speech muxed as AAC (FFmpeg's
native ``aac`` encoder, which takes 16 kHz directly). ``Mp4Writer`` streams: frames arrive in batches
(the animator renders ~32 at a time), each batch is encoded at once together with the audio that
covers the frames written so far, so packets interleave and memory stays bounded however long the
speech is. Frame ``i`` has presentation time exactly ``i / fps`` s.

Frames are ``uint8`` RGB arrays ``(H, W, 3)`` or batches ``(N, H, W, 3)``
(:func:`cause_pl.media.frames.to_uint8_frames` converts generator output). libx264 with yuv420p
needs an even width and height: odd sizes are padded by repeating the last row / column (one pixel).

Audio duration vs frame count: the writer encodes the *whole* audio, whatever the number of
frames; the frame count is the caller's choice. To make the video as long as the audio, render
``video_frame_count(len(audio), sample_rate, fps)`` frames (the last one covers the audio tail);
a shorter video leaves players showing its last frame until the sound ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TypedDict, Unpack

import av
import numpy as np
import torch

from cause_pl.checks import is_int, positive_int
from cause_pl.media.atomic import atomic_output
from cause_pl.media.frames import as_frame_batch

_AUDIO_CHUNK_SECONDS = 1
"""Longest audio piece handed to the encoder at once (bounds the copies made at ``close``)."""


def video_frame_count(num_samples: int, sample_rate: int, fps: int = 25) -> int:
    """Frames a video of this audio needs: ceil(num_samples * fps / sample_rate), at least 1."""
    positive_int("sample_rate", sample_rate)
    positive_int("fps", fps)
    if not is_int(num_samples) or num_samples < 0:
        raise ValueError(f"num_samples must be an int >= 0, got {num_samples!r}")
    return max(1, int(-(-num_samples * fps // sample_rate)))


class Mp4Writer:
    """H.264 (libx264, yuv420p) video at `fps`, with the mono `audio` muxed as AAC. Context manager.

    ``threads``: libx264 encoder threads (None = libx264's automatic choice, about 1.5 per core).
    The file is written atomically (:func:`cause_pl.media.atomic.atomic_output`): to a temporary
    name in the same folder, renamed to ``path`` by a successful ``close``, so ``path`` only ever
    holds a complete video and a previous video there survives a failed run. If the ``with`` block
    raises, the temporary file is closed and removed, and the exception propagates.
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
        positive_int("fps", fps)
        if not is_int(crf) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an int in 0..51 (libx264 quality, lower is better), got {crf!r}")
        positive_int("audio_bitrate", audio_bitrate)
        if threads is not None:
            positive_int("threads", threads)
        if (audio is None) != (sample_rate is None):
            raise ValueError("audio and sample_rate must be given together (or both left None)")
        if sample_rate is not None:
            positive_int("sample_rate", sample_rate)
        self._audio = None if audio is None else _as_waveform(audio)
        self._output = atomic_output(path)
        self.path = self._output.path
        self.fps = int(fps)
        self.sample_rate = None if sample_rate is None else int(sample_rate)
        self._frames_written = 0
        self._samples_written = 0
        self._frame_size: tuple[int, int] | None = None  # (H, W) as given, before padding
        self._closed = False
        self._container = av.open(str(self._output.temporary), mode="w", format="mp4")
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
        batch = as_frame_batch(frames, "frames")
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
        if self._audio is not None and self.sample_rate is not None:
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
        self._output.commit()

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
            self._output.discard()

    def _start_video(self, size: tuple[int, int]) -> None:
        """Fix the frame size (padded to even) before the first packet writes the header."""
        self._frame_size = size
        height, width = size
        self._video.height = height + height % 2
        self._video.width = width + width % 2

    def _encode_audio_until(self, stop: int) -> None:
        """Encode audio samples [samples written, stop) in pieces of at most a second."""
        audio, rate = self._audio, self.sample_rate
        assert audio is not None and rate is not None, "only called on a writer with audio"
        stop = min(stop, len(audio))
        chunk = _AUDIO_CHUNK_SECONDS * rate
        while self._samples_written < stop:
            end = min(stop, self._samples_written + chunk)
            piece = audio[None, self._samples_written : end]
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = self._samples_written
            frame.time_base = self._audio_stream.time_base
            self._container.mux(self._audio_stream.encode(frame))
            self._samples_written = end


class _WriterOptions(TypedDict, total=False):
    """The ``Mp4Writer`` settings ``write_mp4`` passes on."""

    crf: int
    audio_bitrate: int
    threads: int | None


def write_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    audio: np.ndarray | torch.Tensor | None = None,
    sample_rate: int | None = None,
    fps: int = 25,
    **kwargs: Unpack[_WriterOptions],
) -> Path:
    """Write ``frames`` (single frames or batches, streamed) with ``audio`` to an mp4; returns the path.

    ``kwargs`` go to ``Mp4Writer`` (crf, audio_bitrate, threads).
    """
    with Mp4Writer(path, fps=fps, audio=audio, sample_rate=sample_rate, **kwargs) as writer:
        for item in frames:
            writer.write(item)
    return writer.path


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
