"""Decode an mp4 completely with PyAV: every video frame as RGB, the audio's decoded duration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass
class Mp4Contents:
    frames: np.ndarray
    """(N, H, W, 3) uint8, every decoded video frame in order."""
    fps: float
    video_codec: str
    audio_codec: str | None
    audio_seconds: float
    """The audio stream's duration in the container (0 without an audio stream)."""
    decoded_audio_seconds: float
    """Decoded samples / rate: up to one AAC packet (1024 samples) of padding more than the above."""


def decode_mp4(path: str | Path) -> Mp4Contents:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps, video_codec = float(video.average_rate), video.codec_context.name
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return Mp4Contents(frames, fps, video_codec, None, 0.0, 0.0)
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return Mp4Contents(frames, fps, video_codec, audio.codec_context.name, seconds, samples / audio.rate)
