"""``cause-pl animate`` as a user runs it (subprocess), on the quick demo's checkpoints."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from cause_pl.cli.main import main
from cause_pl.faces.align import prepare_face
from cause_pl.faces.detect import _cascade
from cause_pl.inference.animator import SpeechToFaceAnimator
from cause_pl.media.mp4 import video_frame_count
from cause_pl.openface.reader import read_openface_csv
from tests.builders.media import write_m4a
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_main import ROOT
from tests.faces.photos import scene


def _animate(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cause_pl.cli.main", "animate", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_animate_m4a_speech_and_a_non_square_rgba_face(quick_demo, tmp_path):
    files = quick_demo.files
    wave, rate = soundfile.read(files["speech"], dtype="float32")
    audio = write_m4a(tmp_path / "speech.m4a", wave[:, None], rate)
    face = Image.open(files["face"]).convert("RGBA").resize((90, 60))
    face.save(tmp_path / "face.png")
    out = tmp_path / "out" / "talking.mp4"
    result = _animate(
        "--audio",
        audio,
        "--face",
        tmp_path / "face.png",
        "--cause_ckpt",
        files["cause_checkpoint"],
        "--ganimation_ckpt",
        files["ganimation_checkpoint"],
        "--out",
        out,
        "--au_csv",
        tmp_path / "aus.csv",
        "--strip",
        tmp_path / "strip.png",
        "--au_scale",
        "1.5",
        "--no_align",  # squashed to 90 x 60: the centre crop of before
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "frames/s" in result.stderr and "frame/s" in result.stderr  # summary line and progress bar
    video = decode_mp4(out)
    expected_frames = video_frame_count(len(wave), rate, 25)
    assert abs(len(video.frames) - expected_frames) <= 1  # the m4a decodes to the same length +- AAC rounding
    assert abs(video.audio_seconds - len(wave) / rate) <= 1 / 25
    track = read_openface_csv(tmp_path / "aus.csv")
    assert len(track) == len(video.frames) and track.valid.all()
    assert track.aus.min() >= 0 and track.aus.max() <= 5
    strip = Image.open(tmp_path / "strip.png")
    assert strip.height == video.frames.shape[1] and strip.width > 7 * strip.height


def test_animate_errors_are_clear(quick_demo, tmp_path, capsys):
    """One line naming the problem, a non-zero exit and no output file (run in-process: an uncaught
    exception, i.e. a traceback for the user, fails the test)."""
    files = quick_demo.files
    (tmp_path / "face.txt").write_text("not an image")
    (tmp_path / "speech.wav").write_bytes(b"RIFF garbage")
    good = {
        "--audio": files["speech"],
        "--face": files["face"],
        "--cause_ckpt": files["cause_checkpoint"],
        "--ganimation_ckpt": files["ganimation_checkpoint"],
        "--out": tmp_path / "x.mp4",
    }
    cases = [
        ({"--face": tmp_path / "face.txt"}, "not a readable image"),
        ({"--audio": tmp_path / "speech.wav"}, "speech.wav"),
        (
            {"--cause_ckpt": files["ganimation_checkpoint"], "--ganimation_ckpt": files["cause_checkpoint"]},
            "expected a CAUSERegressor checkpoint",
        ),
        ({"--audio": tmp_path / "missing.wav"}, "file not found"),
        ({"--device": "nonsense"}, "not a torch device"),
    ]
    if not torch.cuda.is_available():
        cases.append(({"--device": "cuda", "--bf16": "true"}, "torch sees no CUDA device"))
    for change, message in cases:
        argv = ["animate", *(str(item) for pair in {**good, **change}.items() for item in pair)]
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        stderr = capsys.readouterr().err
        assert code not in (0, None) and message in stderr, (change, stderr[-2000:])
    assert not (tmp_path / "x.mp4").exists()


def test_require_output_makes_the_folder_and_refuses_a_folder_as_the_file(tmp_path):
    from cause_pl.cli.animate import require_output

    assert require_output(tmp_path / "new" / "out.mp4", "--out") == tmp_path / "new" / "out.mp4"
    assert (tmp_path / "new").is_dir()
    with pytest.raises(IsADirectoryError, match="--strip: is a directory, not a file"):
        require_output(tmp_path / "new", "--strip")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"batch_frames": 0}, "--batch_frames must be >= 1, got 0"),
        ({"smoothing": 4}, "--smoothing must be a positive odd number of frames, got 4"),
        ({"au_scale": float("nan")}, "--au_scale must be a finite number"),
        ({"face_index": -1}, "--face_index must be >= 0"),
        ({"face_index": 1, "no_align": True}, "needs alignment"),
        ({"paste_back": True, "no_align": True}, "--paste_back needs alignment"),
    ],
)
def test_bad_numbers_are_usage_errors_before_any_file_is_read(tmp_path, flags, message):
    from cause_pl.cli.animate import animate
    from cause_pl.cli.command import UsageError

    missing = tmp_path / "missing"
    with pytest.raises(UsageError, match=message):
        animate(audio=missing, face=missing, cause_ckpt=missing, ganimation_ckpt=missing, out=missing, **flags)


def _main(argv: list[str], capsys) -> tuple[int | str | None, str]:
    """``main(argv)`` in-process: its exit code and stderr."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


@pytest.fixture
def short_run(quick_demo, tmp_path):
    """animate's arguments for one second of the demo's speech and the picture ``tmp_path / photo.png``."""
    files = quick_demo.files
    wave, rate = soundfile.read(files["speech"], dtype="float32")
    soundfile.write(tmp_path / "speech.wav", wave[:rate], rate)
    flags = {
        "--audio": tmp_path / "speech.wav",
        "--face": tmp_path / "photo.png",
        "--cause_ckpt": files["cause_checkpoint"],
        "--ganimation_ckpt": files["ganimation_checkpoint"],
        "--out": tmp_path / "out.mp4",
    }
    return ["animate", *(str(item) for pair in flags.items() for item in pair)]


@pytest.mark.parametrize(
    ("flags", "align", "face_index"),
    [([], True, 0), (["--face_index", "1"], True, 1), (["--no_align"], False, 0)],
)
def test_the_face_animated_is_the_one_asked_for(short_run, tmp_path, capsys, monkeypatch, flags, align, face_index):
    """Aligned by default (the largest face); --face_index 1 the second largest; --no_align today's centre crop."""
    scene(1000, 600, [(0.9, 0.0, (0.0, 20.0)), (0.6, 0.0, (560.0, 120.0))])[0].save(tmp_path / "photo.png")
    used = []
    render = SpeechToFaceAnimator.render

    def spy(self, wave, face, *args, **kwargs):
        used.append(face)
        return render(self, wave, face, *args, **kwargs)

    monkeypatch.setattr(SpeechToFaceAnimator, "render", spy)
    code, stderr = _main([*short_run, *flags], capsys)
    assert code == 0, stderr[-2000:]
    [face] = used
    assert torch.equal(face, prepare_face(tmp_path / "photo.png", face.shape[-1], align, face_index))
    assert len(decode_mp4(tmp_path / "out.mp4").frames) == 25


def test_a_photo_without_a_face_is_one_line_suggesting_no_align(short_run, tmp_path, capsys):
    Image.linear_gradient("L").resize((320, 240)).save(tmp_path / "photo.png")
    code, stderr = _main(short_run, capsys)
    assert code == 1
    [line] = [line for line in stderr.splitlines() if line.strip()]
    assert "photo.png: no face found; --no_align animates the photo centre-cropped instead" in line
    assert not (tmp_path / "out.mp4").exists()


def test_an_opencv_without_haar_cascades_is_one_usage_line(short_run, tmp_path, capsys, monkeypatch):
    """OpenCV 5 has no ``cv2.CascadeClassifier`` (seen on a GPU machine's image): exit 2, one line, no file."""
    monkeypatch.delattr(cv2, "CascadeClassifier")
    _cascade.cache_clear()
    scene(320, 240, [(0.7, 0.0, (60.0, 20.0))])[0].save(tmp_path / "photo.png")
    code, stderr = _main(short_run, capsys)
    assert code == 2
    [line] = [line for line in stderr.splitlines() if line.strip()]
    assert f"OpenCV {cv2.__version__} lacks" in line and line.endswith("or turn alignment off (animate: --no_align)")
    assert not (tmp_path / "out.mp4").exists()


def test_paste_back_writes_the_photo_with_the_face_animated_in_place(short_run, tmp_path, capsys):
    """--paste_back: frames of the photo's size (odd sides padded to even), the photo unchanged away from the face."""
    photo, _ = scene(701, 481, [(0.7, 8.0, (150.0, 60.0))])
    photo.save(tmp_path / "photo.png")
    code, stderr = _main([*short_run, "--paste_back"], capsys)
    assert code == 0, stderr[-2000:]
    frames = decode_mp4(tmp_path / "out.mp4").frames
    assert frames.shape == (25, 482, 702, 3)
    background = np.abs(frames[:, :481, :701].astype(float) - np.asarray(photo))[:, :, 520:]  # right of the face
    assert background.mean() < 3.0  # H.264's loss only


def test_paste_back_face_region_follows_the_au_track(short_run, tmp_path, capsys, monkeypatch):
    """A generator whose output brightness follows the AUs: the pasted face's brightness follows the AU track."""
    from cause_pl.models.ganimation import GANimation
    from cause_pl.nets.ganimation import GeneratorOutput

    def brightness_by_aus(self, image, au):
        level = au.mean(dim=1)
        shift = 0.5 * (level - level.mean()) / (level.std() + 1e-6)  # a frame of higher mean AU is lighter
        edited = (image + shift[:, None, None, None]).clamp(-1, 1)
        return GeneratorOutput(edited, torch.ones_like(edited[:, :1]), edited)

    monkeypatch.setattr(GANimation, "generate", brightness_by_aus)
    photo, _ = scene(701, 481, [(0.7, 8.0, (150.0, 60.0))])
    photo.save(tmp_path / "photo.png")
    code, stderr = _main([*short_run, "--paste_back", "--au_csv", str(tmp_path / "aus.csv")], capsys)
    assert code == 0, stderr[-2000:]
    frames = decode_mp4(tmp_path / "out.mp4").frames.astype(np.float64)
    track = read_openface_csv(tmp_path / "aus.csv").aus.mean(axis=1)
    face = frames[:, 220:280, 300:360].mean(axis=(1, 2, 3))  # the middle of the placed portrait's face
    outside = frames[:, :481, 560:701].mean(axis=(1, 2, 3))
    assert np.corrcoef(face, track[: len(face)])[0, 1] > 0.9
    assert np.ptp(face) > 10 * max(np.ptp(outside), 0.5)
