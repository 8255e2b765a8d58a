"""Media rendering: real mp4/gif/png files written by cause_pl.media.frames, read back with PyAV / Pillow."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from cause_pl.media.frames import frame_strip, to_uint8_frames, write_gif, write_png_strip
from cause_pl.media.mp4 import Mp4Writer, video_frame_count, write_mp4

RATE = 16000
FPS = 25
HEIGHT, WIDTH = 48, 64
AAC_FRAME = 1024  # samples per AAC packet: the decoder may return up to this many padding samples


def flat_frames(count: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(count, H, W, 3) frames, each one flat colour; up to 40 frames differ by >= 29 levels on average."""
    index = np.arange(count)[:, None]
    colours = (index * np.array([22, 53, 71]) + np.array([0, 101, 173])) % 224 + 16
    return np.broadcast_to(colours[:, None, None, :], (count, height, width, 3)).astype(np.uint8)


def speech_like(seconds: float, rate: int = RATE) -> np.ndarray:
    """A voiced-speech stand-in: 140 Hz harmonics under a 4 Hz syllable envelope, peak < 1."""
    t = np.arange(round(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.25 * envelope * voiced).astype(np.float32)


def decode_mp4(path: Path) -> dict:
    """Everything the tests check about an mp4: streams, decoded RGB frames with times, audio."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "video_codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "audio_streams": len(container.streams.audio),
        }
        decoded = list(container.decode(video=0))
        info["frames"] = np.stack([frame.to_ndarray(format="rgb24") for frame in decoded])
        info["times"] = [frame.pts * frame.time_base for frame in decoded]
    if info["audio_streams"]:
        with av.open(str(path)) as container:
            audio = container.streams.audio[0]
            info["audio_codec"] = audio.codec_context.name
            info["audio_rate"] = audio.rate
            info["audio_duration"] = float(audio.duration * audio.time_base)
            info["audio"] = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    return info


def open_files_of_this_process() -> set[str]:
    return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}


# --- mp4 --------------------------------------------------------------------------------------


def test_mp4_has_every_frame_at_exact_times_and_the_whole_audio(tmp_path):
    audio = speech_like(1.5)[:-123]  # not a whole number of frames
    count = video_frame_count(len(audio), RATE, FPS)
    frames = flat_frames(count)

    with Mp4Writer(tmp_path / "clip.mp4", fps=FPS, audio=audio, sample_rate=RATE) as writer:
        for start in range(0, count, 16):
            writer.write(frames[start : start + 16])
    decoded = decode_mp4(tmp_path / "clip.mp4")

    assert writer.frames_written == count
    assert (decoded["video_codec"], decoded["audio_codec"]) == ("h264", "aac")
    assert decoded["size"] == (WIDTH, HEIGHT) and decoded["audio_rate"] == RATE
    assert decoded["frames"].shape == (count, HEIGHT, WIDTH, 3)
    assert decoded["times"] == [Fraction(i, FPS) for i in range(count)]
    errors = np.abs(decoded["frames"].astype(float) - frames).mean(axis=(1, 2, 3))
    assert errors.max() < 6, errors
    distances = np.abs(decoded["frames"][:, None].astype(float) - frames[None]).mean(axis=(2, 3, 4))
    assert list(distances.argmin(axis=1)) == list(range(count))  # right order
    assert abs(decoded["audio_duration"] - len(audio) / RATE) < 1 / FPS
    assert len(audio) <= len(decoded["audio"]) < len(audio) + AAC_FRAME
    correlation = np.corrcoef(decoded["audio"][: len(audio)], audio)[0, 1]
    assert correlation > 0.95  # the speech itself, not shifted


def test_audio_longer_than_the_video_is_kept_whole(tmp_path):
    audio = torch.from_numpy(speech_like(2.0)).to(torch.bfloat16)  # torch input, a dtype numpy lacks
    path = write_mp4(tmp_path / "short.mp4", [flat_frames(5)], audio=audio, sample_rate=RATE)
    decoded = decode_mp4(path)

    assert len(decoded["frames"]) == 5
    assert decoded["audio_duration"] == pytest.approx(2.0, abs=1 / FPS)


@pytest.mark.parametrize("num_samples", [1, 640, 640 * 25, 640 * 37 + 1, 16000 * 2 - 1])
def test_video_frame_count_matches_the_audio_duration_of_a_real_file(tmp_path, num_samples):
    audio = speech_like(num_samples / RATE + 0.01)[:num_samples]
    count = video_frame_count(num_samples, RATE, FPS)
    path = write_mp4(tmp_path / "a.mp4", [flat_frames(count, 16, 16)], audio=audio, sample_rate=RATE)
    decoded = decode_mp4(path)

    video_duration = len(decoded["frames"]) / FPS
    assert len(decoded["frames"]) == count
    assert 0 <= video_duration - decoded["audio_duration"] < 1 / FPS
    if num_samples % (RATE // FPS) == 0:
        assert video_duration == pytest.approx(num_samples / RATE, abs=1e-9)


def test_video_frame_count_is_exact_for_huge_and_odd_rates():
    assert video_frame_count(0, RATE) == 1
    assert video_frame_count(10**18 * 640 + 1, 16000, 25) == 10**18 + 1  # beyond float precision
    assert video_frame_count(44100, 44100, 30) == 30
    assert video_frame_count(44101, 44100, 30) == 31
    with pytest.raises(ValueError, match="sample_rate"):
        video_frame_count(100, 0)


def test_many_small_writes_equal_one_big_write(tmp_path):
    frames = flat_frames(23)
    audio = speech_like(1.0)
    write_mp4(tmp_path / "one.mp4", [frames], audio=audio, sample_rate=RATE)
    pieces = [frames[0], frames[1:2], frames[2:5]] + [frames[i] for i in range(5, 23)]  # (H, W, 3) too
    write_mp4(tmp_path / "many.mp4", pieces, audio=audio, sample_rate=RATE)
    one, many = decode_mp4(tmp_path / "one.mp4"), decode_mp4(tmp_path / "many.mp4")

    assert len(many["frames"]) == len(one["frames"]) == 23
    assert np.abs(many["frames"].astype(float) - one["frames"]).mean() < 1
    assert many["audio_duration"] == one["audio_duration"]


def test_video_only(tmp_path):
    path = write_mp4(tmp_path / "silent.mp4", iter(flat_frames(7)))
    decoded = decode_mp4(path)

    assert decoded["audio_streams"] == 0
    assert len(decoded["frames"]) == 7 and decoded["size"] == (WIDTH, HEIGHT)


def test_odd_size_is_padded_by_repeating_the_last_row_and_column(tmp_path):
    frames = np.full((3, 47, 63, 3), 40, np.uint8)
    frames[:, -1, :] = (230, 60, 60)  # distinct last row and column, so the padding is visible
    frames[:, :, -1] = (60, 230, 60)
    path = write_mp4(tmp_path / "nested" / "odd.mp4", [frames])
    decoded = decode_mp4(path)["frames"].astype(float)

    assert decoded.shape == (3, 48, 64, 3)
    assert np.abs(decoded[:, :47, :63] - frames).mean() < 6
    assert np.abs(decoded[:, 47, :62] - frames[:, 46, :62]).mean() < 12  # repeated last row
    assert np.abs(decoded[:, 1:46, 63] - frames[:, 1:46, 62]).mean() < 12  # repeated last column


# --- mp4 errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "error", "match"),
    [
        (np.zeros((2, HEIGHT, WIDTH, 3), np.float32), TypeError, "uint8"),
        (torch.zeros((2, HEIGHT, WIDTH, 3), dtype=torch.uint8), TypeError, "numpy"),
        (np.zeros((HEIGHT, WIDTH), np.uint8), ValueError, "shape"),
        (np.zeros((2, HEIGHT, WIDTH, 4), np.uint8), ValueError, "shape"),
        (np.zeros((2, 0, WIDTH, 3), np.uint8), ValueError, "empty"),
    ],
)
def test_bad_frames_are_rejected(tmp_path, frames, error, match):
    with Mp4Writer(tmp_path / "bad.mp4") as writer:
        writer.write(flat_frames(1))
        with pytest.raises(error, match=f"frames.*{match}"):
            writer.write(frames)


def test_frame_size_change_and_write_after_close_are_rejected(tmp_path):
    writer = Mp4Writer(tmp_path / "v.mp4")
    writer.write(flat_frames(2))
    with pytest.raises(ValueError, match="size changed"):
        writer.write(flat_frames(2, HEIGHT + 2, WIDTH))
    writer.close()
    with pytest.raises(ValueError, match="after close"):
        writer.write(flat_frames(1))
    assert len(decode_mp4(tmp_path / "v.mp4")["frames"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fps": 0}, "fps"),
        ({"audio": speech_like(0.1)}, "sample_rate"),
        ({"sample_rate": RATE}, "sample_rate"),
        ({"audio": np.zeros((1, 100), np.float32), "sample_rate": RATE}, "1-D"),
        ({"audio": np.zeros(100, np.int16), "sample_rate": RATE}, "float"),
        ({"crf": 80}, "crf"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_writer_arguments_are_rejected_before_a_file_exists(tmp_path, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Mp4Writer(tmp_path / "x.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_an_exception_inside_with_closes_and_removes_the_unfinished_file(tmp_path):
    path = tmp_path / "crash.mp4"

    def render_then_die() -> None:
        with Mp4Writer(path, audio=speech_like(1.0), sample_rate=RATE) as writer:
            writer.write(flat_frames(40))  # enough for packets to be on disk already
            assert any(str(tmp_path) in name for name in open_files_of_this_process())
            raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        render_then_die()

    assert list(tmp_path.iterdir()) == []
    assert not any(str(tmp_path) in name for name in open_files_of_this_process())


def test_closing_without_frames_is_an_error_and_writes_nothing(tmp_path):
    writer = Mp4Writer(tmp_path / "empty.mp4", audio=speech_like(0.5), sample_rate=RATE)
    with pytest.raises(ValueError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


# --- gif and png strip ------------------------------------------------------------------------


def test_gif_has_every_frame_at_40_ms(tmp_path):
    frames = flat_frames(6)
    path = write_gif(tmp_path / "gifs" / "a.gif", frames, fps=25)

    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (WIDTH, HEIGHT)
        for index in range(6):
            gif.seek(index)
            assert gif.info["duration"] == 40
            pixels = np.asarray(gif.convert("RGB"), dtype=float)
            assert np.abs(pixels - frames[index]).mean() < 6


def test_gif_delays_do_not_drift_when_fps_does_not_divide_100(tmp_path):
    path = write_gif(tmp_path / "b.gif", [flat_frames(30, 8, 8)], fps=30)
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert len(durations) == 30 and sum(durations) == 1000
    assert set(durations) <= {30, 40}


def test_png_strip_picks_first_and_last_with_gaps(tmp_path):
    frames = flat_frames(20)
    path = write_png_strip(tmp_path / "strip.png", list(frames), count=5)

    with Image.open(path) as png:
        strip = np.asarray(png.convert("RGB"))
    assert strip.shape == (HEIGHT, 5 * WIDTH + 4 * 2, 3)
    assert np.array_equal(strip[:, :WIDTH], frames[0])
    assert np.array_equal(strip[:, -WIDTH:], frames[-1])
    assert np.array_equal(strip[:, WIDTH + 2 : 2 * WIDTH + 2], frames[5])  # round(19 / 4) = 5
    assert (strip[:, WIDTH : WIDTH + 2] == 255).all()


def test_frame_strip_resizes_and_shows_short_sequences_whole():
    strip = frame_strip(flat_frames(3), count=8, height=24, gap=0)
    assert strip.size == (3 * 32, 24)


@pytest.mark.parametrize("call", [lambda p: write_gif(p / "e.gif", []), lambda p: frame_strip([])])
def test_empty_sequences_are_rejected(tmp_path, call):
    with pytest.raises(ValueError, match="frames is empty"):
        call(tmp_path)


# --- to_uint8_frames --------------------------------------------------------------------------


def test_to_uint8_frames_maps_range_and_layout():
    images = torch.zeros(2, 3, 4, 5)
    images[0, 0] = -1.0
    images[0, 1] = 1.0
    images[0, 2] = 0.0
    images[1, 0] = -3.0  # clamped
    images[1, 1] = 2.0
    images[1, 2, 1, 2] = 0.5  # 191.25 -> 191

    frames = to_uint8_frames(images.to(torch.bfloat16))

    assert frames.dtype == np.uint8 and frames.shape == (2, 4, 5, 3)
    assert (frames[0, ..., 0] == 0).all() and (frames[0, ..., 1] == 255).all()
    assert (frames[0, ..., 2] == 128).all()
    assert (frames[1, ..., 0] == 0).all() and (frames[1, ..., 1] == 255).all()
    assert frames[1, 1, 2, 2] == 191 and frames[1, 0, 0, 2] == 128


def test_to_uint8_frames_rejects_bad_input():
    with pytest.raises(TypeError, match="floating"):
        to_uint8_frames(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        to_uint8_frames(torch.zeros(1, 4, 4, 3))
    with pytest.raises(ValueError, match="NaN"):
        to_uint8_frames(torch.full((1, 3, 2, 2), float("nan")))


# --- atomic writes: a failed write keeps the previous file ------------------------------------


def disk_full(*_args, **_kwargs):
    raise OSError(28, "No space left on device")


def failing_pillow_encoder(monkeypatch):
    """Make Pillow's tile encoder write some bytes and then fail as a full disk would."""
    from PIL import ImageFile

    def encode_then_fail(image, fp, *args, **kwargs):
        fp.write(b"\x00" * 64)
        disk_full()

    monkeypatch.setattr(ImageFile, "_save", encode_then_fail)


def test_failed_mp4_keeps_the_previous_video(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", [flat_frames(5)])
    previous = path.read_bytes()

    def render_then_die() -> None:
        with Mp4Writer(path) as writer:
            writer.write(flat_frames(40))
            raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        render_then_die()
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_mp4_failing_while_flushing_keeps_the_previous_video(tmp_path, monkeypatch):
    path = write_mp4(tmp_path / "clip.mp4", [flat_frames(5)])
    previous = path.read_bytes()
    writer = Mp4Writer(path, audio=speech_like(1.0), sample_rate=RATE)
    writer.write(flat_frames(25))
    monkeypatch.setattr(writer, "_encode_audio_until", disk_full)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_new_mp4_replaces_the_previous_one(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", [flat_frames(5)])
    write_mp4(path, [flat_frames(9)])
    assert len(decode_mp4(path)["frames"]) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("a.gif", lambda path, frames: write_gif(path, frames)),
        ("strip.png", lambda path, frames: write_png_strip(path, frames, count=3)),
    ],
)
def test_failed_gif_or_png_strip_keeps_the_previous_file(tmp_path, monkeypatch, name, write):
    path = write(tmp_path / name, flat_frames(4))
    previous = path.read_bytes()
    failing_pillow_encoder(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write(path, flat_frames(6)[2:])
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
