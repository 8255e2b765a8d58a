"""SpeechToFaceAnimator on the quick demo's checkpoints: real mp4 files decoded with PyAV."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import pytorch_lightning as pl
import soundfile
import torch
from PIL import Image

from cause_pl.au import NUM_AUS, au_index
from cause_pl.faces.align import load_aligned_face
from cause_pl.inference.animator import SpeechToFaceAnimator, smooth_track
from cause_pl.inference.requests import AnimationRequests
from cause_pl.media.image import load_face
from cause_pl.media.mp4 import Mp4Writer, video_frame_count
from cause_pl.models import GANimation
from tests.builders.mp4_probe import decode_mp4
from tests.faces.photos import scene


@pytest.fixture(scope="module")
def animator(quick_demo):
    files = quick_demo.files
    return SpeechToFaceAnimator.from_checkpoints(
        files["cause_checkpoint"], files["ganimation_checkpoint"], frames_per_batch=8
    )


def _speech(quick_demo, seconds: float | None = None) -> np.ndarray:
    wave, rate = soundfile.read(quick_demo.files["speech"], dtype="float32")
    assert rate == 16000
    return wave if seconds is None else wave[: int(seconds * rate)]


def test_demo_animation_decodes_with_frames_matching_the_audio(quick_demo, animator):
    wave = _speech(quick_demo)
    video = decode_mp4(quick_demo.files["animation"])
    assert (video.video_codec, video.audio_codec) == ("h264", "aac")
    assert video.fps == 25
    assert video.frames.shape == (video_frame_count(len(wave), 16000, 25), animator.image_size, animator.image_size, 3)
    assert abs(video.audio_seconds - len(wave) / 16000) <= 1 / 25
    assert len(wave) / 16000 <= video.decoded_audio_seconds <= (len(wave) + 1024) / 16000
    assert abs(len(video.frames) / 25 - len(wave) / 16000) <= 1 / 25


def test_frames_change_where_the_aus_change_and_stay_still_where_flat(quick_demo, animator, tmp_path):
    # A freshly initialised generator edits strongly everywhere (attention ~0.5), so every AU change
    # shows; the briefly trained one of the quick demo keeps most pixels (attention ~0.9).
    torch.manual_seed(0)
    fresh = GANimation(
        image_size=animator.image_size,
        g_base_channels=16,
        g_res_blocks=1,
        d_base_channels=16,
        d_layers=3,
        d_max_channels=64,
    )
    animator = SpeechToFaceAnimator(animator.cause, fresh)
    wave = torch.from_numpy(_speech(quick_demo, seconds=3.0))
    frames = video_frame_count(len(wave), animator.sample_rate, animator.fps)
    aus = torch.zeros(frames, NUM_AUS)
    moving = slice(25, 50)  # the second second: the mouth opens and closes every frame
    for code in (25, 26):
        aus[moving, au_index(code)] = torch.tensor([0.0, 5.0]).repeat(13)[:25]
    aus[50:, au_index(12)] = 4.0  # the third second: a held smile
    video = decode_mp4(
        animator.render(wave, animator.load_face(quick_demo.files["face"]), tmp_path / "a.mp4", aus=aus).path
    )
    change = np.abs(np.diff(video.frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    still = np.concatenate([change[1:23], change[52:]])  # away from the cuts at frames 25 and 50
    assert change[moving.start : moving.stop - 1].min() > 5 * max(still.max(), 0.05)
    assert still.max() < 0.5


def test_au_track_is_scaled_smoothed_and_one_row_per_video_frame(quick_demo, tmp_path):
    files = quick_demo.files
    wave = torch.from_numpy(_speech(quick_demo, seconds=2.0))
    plain = SpeechToFaceAnimator.from_checkpoints(files["cause_checkpoint"], files["ganimation_checkpoint"])
    doubled = SpeechToFaceAnimator.from_checkpoints(
        files["cause_checkpoint"], files["ganimation_checkpoint"], au_scale=2.0, smoothing_frames=5
    )
    base = plain.au_track(wave)
    assert base.shape == (video_frame_count(len(wave), 16000, 25), NUM_AUS)
    torch.testing.assert_close(doubled.au_track(wave), smooth_track((2 * base).clamp(0, 5), 5))


def test_smooth_track():
    track = torch.zeros(9, 2)
    track[4, 0] = 3.0
    smoothed = smooth_track(track, 3)
    torch.testing.assert_close(smoothed[3:6, 0], torch.ones(3))
    assert smoothed[:, 1].abs().max() == 0 and smoothed.sum() == pytest.approx(3.0)
    torch.testing.assert_close(smooth_track(torch.full((5, 1), 2.0), 5), torch.full((5, 1), 2.0))
    with pytest.raises(ValueError, match="odd"):
        smooth_track(track, 4)


def test_frames_come_in_bounded_batches(quick_demo, animator):
    face = animator.load_face(quick_demo.files["face"])
    sizes = [len(batch) for batch in animator.frames(face, torch.zeros(21, NUM_AUS))]
    assert sizes == [8, 8, 5]


def test_trainer_predict_renders_every_request(quick_demo, animator, tmp_path):
    files = quick_demo.files
    short = tmp_path / "short.wav"
    soundfile.write(short, _speech(quick_demo, seconds=1.3), 16000)
    requests = AnimationRequests(
        [(files["speech"], files["face"], tmp_path / "one.mp4"), (short, files["face"], tmp_path / "two.mp4")],
        animator.sample_rate,
        animator.image_size,
    )
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    results = trainer.predict(animator, requests.loader())
    assert [result.path.name for result in results] == ["one.mp4", "two.mp4"]
    assert (
        results[1].frames
        == video_frame_count(int(1.3 * 16000), 16000, 25)
        == len(decode_mp4(tmp_path / "two.mp4").frames)
    )


def test_mismatched_checkpoints_are_refused(quick_demo):
    files = quick_demo.files
    with pytest.raises(ValueError, match="expected a GANimation checkpoint"):
        SpeechToFaceAnimator.from_checkpoints(files["cause_checkpoint"], files["cause_checkpoint"])
    with pytest.raises(ValueError, match="expected a CAUSERegressor checkpoint"):
        SpeechToFaceAnimator.from_checkpoints(files["ganimation_checkpoint"], files["ganimation_checkpoint"])


def test_faces_of_any_shape_and_mode_become_generator_inputs(tmp_path, animator):
    wide = np.zeros((90, 270, 3), np.uint8)
    wide[:, :90] = (255, 0, 0)
    wide[:, 90:180] = (0, 0, 255)
    wide[:, 180:] = (0, 255, 0)
    cases = {
        "wide.jpg": Image.fromarray(wide),
        "grey.png": Image.fromarray(wide).convert("L"),
        "palette.gif": Image.fromarray(wide).convert("P"),
        "alpha.png": Image.fromarray(wide).convert("RGBA"),
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
        face = animator.load_face(tmp_path / name)
        assert face.shape == (3, animator.image_size, animator.image_size) and face.dtype == torch.float32
        assert face.min() >= -1 and face.max() <= 1
    centre = animator.load_face(tmp_path / "wide.jpg")  # the centre third (blue) survives the crop
    assert centre[2].mean() > 0.9 and centre[0].mean() < -0.9 and centre[1].mean() < -0.9
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        animator.load_face(tmp_path / "text.png")


def test_faces_are_found_and_aligned_on_request(quick_demo, animator, tmp_path):
    """Centre-cropped by default; with ``align`` the chosen face aligned (here and in AnimationRequests)."""
    path = tmp_path / "two.png"
    scene(1000, 600, [(0.9, 0.0, (0.0, 20.0)), (0.6, 0.0, (560.0, 120.0))])[0].save(path)
    size = animator.image_size
    assert torch.equal(animator.load_face(path), load_face(path, size))
    assert torch.equal(animator.load_face(path, align=True, face_index=1), load_aligned_face(path, size, 1).tensor())
    requests = AnimationRequests([(quick_demo.files["speech"], path, tmp_path / "x.mp4")], 16000, size, align=True)
    assert torch.equal(requests[0]["face"], load_aligned_face(path, size).tensor())
    with pytest.raises(ValueError, match="paste_back needs align"):
        animator.animate(quick_demo.files["speech"], path, tmp_path / "y.mp4", paste_back=True)


def test_bf16_generation_stays_close_to_fp32(quick_demo, animator):
    face = animator.load_face(quick_demo.files["face"])
    aus = 5 * torch.rand(12, NUM_AUS, generator=torch.Generator().manual_seed(0))
    fp32 = np.concatenate(list(animator.frames(face, aus))).astype(np.int16)
    fast = SpeechToFaceAnimator(animator.cause, animator.ganimation, frames_per_batch=8, bf16=True)
    bf16 = np.concatenate(list(fast.frames(face, aus))).astype(np.int16)
    difference = np.abs(fp32 - bf16)
    assert difference.mean() < 3 and np.percentile(difference, 99) <= 12


def test_non_finite_aus_are_refused_before_anything_is_written(quick_demo, animator, tmp_path, monkeypatch):
    files = quick_demo.files
    wave = torch.from_numpy(_speech(quick_demo, seconds=1.0))
    face = animator.load_face(files["face"])
    track = torch.ones(video_frame_count(len(wave), 16000, 25), NUM_AUS)
    track[2, 5] = float("nan")
    out, csv = tmp_path / "given.mp4", tmp_path / "given.csv"
    with pytest.raises(ValueError, match="non-finite AUs for this audio"):
        animator.render(wave, face, out, au_csv=csv, aus=track)
    assert not out.exists() and not csv.exists()
    monkeypatch.setattr(
        animator.cause, "forward", lambda mel, lengths=None: torch.full((*mel.shape[:2], NUM_AUS), torch.nan)
    )
    speech = tmp_path / "speech.wav"
    soundfile.write(speech, wave.numpy(), 16000)
    with pytest.raises(ValueError, match=r"the model produced non-finite AUs for .*speech\.wav"):
        animator.animate(speech, files["face"], tmp_path / "estimated.mp4")
    assert not (tmp_path / "estimated.mp4").exists()


def test_encoding_overlaps_generation_and_writes_the_same_bytes(quick_demo, animator, tmp_path, monkeypatch):
    """Batches are encoded on a second thread, in order: the file is the one a plain loop on the
    caller's thread writes from the same frames, byte for byte."""
    wave = torch.from_numpy(_speech(quick_demo, seconds=2.0))
    face = animator.load_face(quick_demo.files["face"])
    track = torch.linspace(0, 4, video_frame_count(len(wave), 16000, 25)).unsqueeze(1).expand(-1, NUM_AUS)
    with Mp4Writer(tmp_path / "plain.mp4", fps=25, audio=wave.numpy(), sample_rate=16000) as writer:
        for batch in animator.frames(face, track):
            writer.write(batch)
    threads = []
    write = Mp4Writer.write

    def spy(self, frames):
        threads.append(threading.current_thread().name)
        write(self, frames)

    monkeypatch.setattr(Mp4Writer, "write", spy)
    result = animator.render(wave, face, tmp_path / "overlapped.mp4", aus=track)
    assert len(threads) == -(-result.frames // 8) and all(name.startswith("mp4-encode") for name in threads)
    assert (tmp_path / "overlapped.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()
    assert result.frames_per_second > 0 and set(result.timings) == {"estimate", "generate", "encode"}


@pytest.mark.parametrize("failing", ["encoder", "generator"])
def test_a_failure_on_either_thread_propagates_and_leaves_no_file(quick_demo, animator, tmp_path, monkeypatch, failing):
    wave = torch.from_numpy(_speech(quick_demo, seconds=2.0))
    face = animator.load_face(quick_demo.files["face"])
    calls = []

    def broken_write(self, frames):
        calls.append(len(frames))
        raise OSError(28, "No space left on device")

    def broken_frames(face, aus):
        yield from list(SpeechToFaceAnimator.frames(animator, face, aus))[:2]
        raise RuntimeError("generator broke")

    if failing == "encoder":
        monkeypatch.setattr(Mp4Writer, "write", broken_write)
    else:
        monkeypatch.setattr(animator, "frames", broken_frames)
    with pytest.raises(OSError if failing == "encoder" else RuntimeError):
        animator.render(wave, face, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []
    assert calls == ([8] if failing == "encoder" else [])
