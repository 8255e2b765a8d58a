"""``cause-pl animate`` as a user runs it (subprocess), on the quick demo's checkpoints."""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile
import torch
from PIL import Image

from cause_pl.cli.main import main
from cause_pl.media.mp4 import video_frame_count
from cause_pl.openface.reader import read_openface_csv
from tests.builders.media import write_m4a
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_main import ROOT


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
    ],
)
def test_bad_numbers_are_usage_errors_before_any_file_is_read(tmp_path, flags, message):
    from cause_pl.cli.animate import animate
    from cause_pl.cli.command import UsageError

    missing = tmp_path / "missing"
    with pytest.raises(UsageError, match=message):
        animate(audio=missing, face=missing, cause_ckpt=missing, ganimation_ckpt=missing, out=missing, **flags)
