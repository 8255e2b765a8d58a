"""Build real media for tests: synthetic signals and writers for every container we decode.

Audio arrays are float32 numpy arrays shaped ``(samples, channels)`` with values in [-1, 1]; a 1-D
array is taken as mono. Signals are deterministic, so a test knows exactly what it wrote:
``tone`` for pitch and duration checks, ``add_click`` for alignment checks (a known event at a
known time must land on a known mel frame).

Lossless writers use soundfile (wav, flac); lossy ones use soundfile (ogg/Vorbis) or PyAV's
bundled FFmpeg (AAC in mp4/m4a, mp3, H.264 video; ``write_video``: mkv, mov and webm too, at
any frame rate, fractional ones included). Every writer creates parent folders and
returns the path it wrote.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

VIDEO_ENCODERS: tuple[str, ...] = ("libx264", "h264", "mpeg4")
"""H.264 first (what real speech videos use); MPEG-4 part 2 only if no H.264 encoder exists."""
MP3_ENCODERS: tuple[str, ...] = ("libmp3lame", "mp3")
CONTAINER_ENCODERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mp4": (VIDEO_ENCODERS, ("aac",)),
    "mkv": (VIDEO_ENCODERS, ("aac",)),
    "mov": (VIDEO_ENCODERS, ("aac",)),
    "webm": (("libvpx-vp9", "libvpx"), ("libopus", "libvorbis")),
}
"""Per container (its file suffix): video encoders, then audio encoders, first usable one wins."""
CONTAINER_FORMATS = {"mkv": "matroska", "mov": "mov", "mp4": "mp4", "webm": "webm"}


def tone(
    seconds: float,
    sample_rate: int,
    freq: float = 220.0,
    amplitude: float = 0.3,
    channels: int = 1,
) -> np.ndarray:
    """A sine of ``freq`` Hz, identical on every channel: ``(round(seconds * sr), channels)``."""
    times = np.arange(round(seconds * sample_rate)) / sample_rate
    wave = amplitude * np.sin(2 * np.pi * freq * times)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def silence(seconds: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    """All-zero audio: ``(round(seconds * sr), channels)``."""
    return np.zeros((round(seconds * sample_rate), channels), dtype=np.float32)


def add_click(
    audio: np.ndarray,
    sample_rate: int,
    at_seconds: float,
    duration: float = 0.002,
    amplitude: float = 0.9,
) -> np.ndarray:
    """A copy of ``audio`` with a short loud noise burst centred on ``at_seconds``, all channels.

    The burst is white noise (fixed seed), so its energy spreads over every mel band and the
    frame whose window is centred on it stands out in the summed energy.
    """
    audio = _as_2d(audio).copy()
    width = max(1, round(duration * sample_rate))
    start = round(at_seconds * sample_rate) - width // 2
    if start < 0 or start + width > len(audio):
        raise ValueError(f"click at {at_seconds} s ({width} samples) does not fit in {len(audio)} samples")
    burst = np.random.default_rng(0).uniform(-amplitude, amplitude, size=width)
    audio[start : start + width] += burst[:, None].astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """WAV via soundfile; ``subtype`` e.g. PCM_U8, PCM_16, PCM_24, PCM_32, FLOAT."""
    return _write_soundfile(path, audio, sample_rate, "WAV", subtype)


def write_flac(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """FLAC via soundfile (lossless; PCM_16 or PCM_24)."""
    return _write_soundfile(path, audio, sample_rate, "FLAC", subtype)


def write_ogg(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Ogg Vorbis via soundfile (lossy, but exact length thanks to Ogg granule positions)."""
    return _write_soundfile(path, audio, sample_rate, "OGG", "VORBIS")


def write_m4a(path: str | Path, audio: np.ndarray, sample_rate: int, bit_rate: int = 96_000) -> Path:
    """AAC audio in an MP4 container (what VoxCeleb2's m4a files are)."""
    path = _prepare(path)
    with av.open(str(path), "w", format="mp4") as container:
        _write_audio_stream(container, "aac", audio, sample_rate, bit_rate)
    return path


def mp3_encoder() -> str | None:
    """Name of an mp3 encoder in PyAV's FFmpeg, or None (then mp3 tests must skip)."""
    return next((name for name in MP3_ENCODERS if _can_encode(name)), None)


def write_mp3(path: str | Path, audio: np.ndarray, sample_rate: int, bit_rate: int = 64_000) -> Path:
    """MPEG-1/2 layer 3 via PyAV; raises RuntimeError if FFmpeg was built without an encoder."""
    codec = mp3_encoder()
    if codec is None:
        raise RuntimeError(f"PyAV's FFmpeg has no mp3 encoder (tried {MP3_ENCODERS})")
    path = _prepare(path)
    with av.open(str(path), "w", format="mp3") as container:
        _write_audio_stream(container, codec, audio, sample_rate, bit_rate)
    return path


def video_encoder() -> str:
    """First usable encoder of ``VIDEO_ENCODERS``."""
    for name in VIDEO_ENCODERS:
        if _can_encode(name):
            return name
    raise RuntimeError(f"PyAV's FFmpeg has none of the video encoders {VIDEO_ENCODERS}")


def write_mp4(
    path: str | Path,
    frames: np.ndarray | None,
    fps: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """An mp4 with H.264 video (yuv420p) and/or AAC audio, like a VoxCeleb2 clip.

    ``frames`` is ``(n, H, W, 3)`` uint8 RGB with even H and W, or None for an audio-only mp4;
    ``audio`` None gives a video-only mp4 (no audio stream at all).
    """
    if frames is None and audio is None:
        raise ValueError("write_mp4 needs frames, audio, or both")
    if frames is not None:
        frames = _check_frames(frames)
    path = _prepare(path)
    with av.open(str(path), "w", format="mp4") as container:
        video = _add_video_stream(container, frames, fps) if frames is not None else None
        if audio is not None:
            _write_audio_stream(container, "aac", audio, sample_rate, 96_000)
        if video is not None:
            _encode_video(container, video, frames, fps)
    return path


def container_encoders(suffix: str) -> tuple[str, str] | None:
    """The (video, audio) encoders ``write_video`` uses for a ``.SUFFIX`` file, or None if one is missing."""
    video, audio = CONTAINER_ENCODERS[suffix]
    chosen = [next((name for name in names if _can_encode(name)), None) for names in (video, audio)]
    return (chosen[0], chosen[1]) if chosen[0] and chosen[1] else None


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """A video in the container its suffix names (mp4, mkv, mov, webm), with audio unless ``audio`` is None.

    ``fps`` may be fractional (``Fraction(30000, 1001)``). Codecs: ``CONTAINER_ENCODERS`` (webm: VP9/VP8 with
    Opus/Vorbis); raises RuntimeError when PyAV's FFmpeg lacks them (see ``container_encoders``).
    """
    path = _prepare(path)
    suffix = path.suffix.lstrip(".").lower()
    encoders = container_encoders(suffix)
    if encoders is None:
        raise RuntimeError(f"PyAV's FFmpeg lacks the encoders of {suffix}: {CONTAINER_ENCODERS[suffix]}")
    frames = _check_frames(frames)
    with av.open(str(path), "w", format=CONTAINER_FORMATS[suffix]) as container:
        video = _add_video_stream(container, frames, fps, encoders[0])
        if audio is not None:
            _write_audio_stream(container, encoders[1], audio, sample_rate, 64_000)
        _encode_video(container, video, frames, fps)
    return path


def _as_2d(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        return audio[:, None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got {audio.shape}")
    return audio


def _prepare(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_soundfile(path: str | Path, audio: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> Path:
    path = _prepare(path)
    sf.write(str(path), _as_2d(audio), sample_rate, format=fmt, subtype=subtype)
    return path


def _can_encode(name: str) -> bool:
    try:
        av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):  # unknown codec name
        return False
    return True


def _write_audio_stream(container, codec: str, audio: np.ndarray, sample_rate: int, bit_rate: int) -> None:
    """Add an audio stream to ``container`` and encode all of ``audio`` into it."""
    audio = _as_2d(audio)
    channels = audio.shape[1]
    stream = container.add_stream(codec, rate=sample_rate, layout=_layout(channels))
    stream.bit_rate = bit_rate
    stream.codec_context.open()  # fixes frame_size, which the encoder demands for every full frame
    frame_size = stream.codec_context.frame_size or len(audio)
    planar = np.ascontiguousarray(audio.T)
    for start in range(0, len(audio), frame_size):
        chunk = np.ascontiguousarray(planar[:, start : start + frame_size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=_layout(channels))
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (n, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"yuv420p needs even H and W, got H={frames.shape[1]} W={frames.shape[2]}")
    return frames


def _add_video_stream(container, frames: np.ndarray, fps: int | Fraction, codec: str | None = None):
    stream = container.add_stream(codec or video_encoder(), rate=Fraction(fps))
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv420p"
    return stream


def _encode_video(container, stream, frames: np.ndarray, fps: int | Fraction) -> None:
    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = index
        frame.time_base = 1 / Fraction(fps)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
