"""``cause-pl import-ganimation`` as a user runs it, and the converted checkpoint driving ``cause-pl animate``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from cause_pl.cli.main import main
from cause_pl.models.checkpoints import read_checkpoint
from cause_pl.models.ganimation_import import METADATA_KEY
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_stream import save_checkpoint
from tests.inference.test_estimate import SAMPLE_RATE, make_model, speech_wave
from tests.models.ganimation_sources import save_source, source_critic, source_generator

ROOT = Path(__file__).resolve().parents[2]
CAUSE_PL = str(ROOT / ".venv" / "bin" / "cause-pl")


def cause_pl(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([CAUSE_PL, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture
def replicate_files(tmp_path) -> tuple[Path, Path]:
    """A small ganimation_replicate generator and 32 px critic, saved as that project saves them."""
    generator = source_generator("replicate", cond_dim=17, base=8, blocks=1)
    critic = source_critic("replicate", image_size=32, cond_dim=17, base=8, layers=4)
    return (
        save_source("replicate", generator, tmp_path / "30_net_gen.pth"),
        save_source("replicate", critic, tmp_path / "30_net_dis.pth"),
    )


def test_import_then_animate(replicate_files, tmp_path, capsys):
    generator, critic = replicate_files
    out = tmp_path / "converted" / "replicate.ckpt"
    code, lines = _main(capsys, "--generator", generator, "--critic", critic, "--out", out)
    assert code == 0, lines
    assert len(lines) == 2
    assert "generator from" in lines[0] and "replicate layout" in lines[0] and "cond_dim 17" in lines[0]
    assert "conv biases cancelled by InstanceNorm" in lines[0] and "image_size 32" in lines[0]
    assert "critic from" in lines[1] and "replicate layout" in lines[1] and "dropped nothing" in lines[1]
    assert read_checkpoint(out)[METADATA_KEY]["critic"]["trained"] is True

    cause_ckpt = save_checkpoint(make_model("cnn"), tmp_path / "cause.ckpt")
    soundfile.write(tmp_path / "speech.wav", speech_wave()[:SAMPLE_RATE].numpy(), SAMPLE_RATE)
    face = np.random.default_rng(0).integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "face.png")
    video = tmp_path / "talking.mp4"
    animated = cause_pl(
        "animate",
        "--audio",
        tmp_path / "speech.wav",
        "--face",
        tmp_path / "face.png",
        "--cause_ckpt",
        cause_ckpt,
        "--ganimation_ckpt",
        out,
        "--out",
        video,
        "--no_align",
    )
    assert animated.returncode == 0, animated.stderr[-3000:]
    frames = decode_mp4(video).frames
    assert frames.shape == (25, 32, 32, 3)


def _main(capsys, *args: str | Path) -> tuple[int | str | None, list[str]]:
    try:
        code: int | str | None = main(["import-ganimation", *map(str, args)])
    except SystemExit as exit_info:
        code = exit_info.code
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_errors_are_one_line_with_their_exit_code(replicate_files, tmp_path, capsys):
    generator, critic = replicate_files
    torch.save(source_generator("official", base=8, blocks=1), tmp_path / "module.pth")
    out = tmp_path / "out.ckpt"
    cases = [
        (["--generator", generator, "--layout", "official"], EXIT_DATA, "not a generator of the official layout"),
        (["--generator", critic], EXIT_DATA, "it looks like a critic"),
        (["--generator", tmp_path / "module.pth"], EXIT_DATA, "not loadable with weights_only=True"),
        (["--generator", tmp_path / "missing.pth"], EXIT_OS, "--generator: file not found"),
        (["--generator", generator, "--image_size", "0"], EXIT_USAGE, "--image_size must be >= 1"),
        (["--generator", generator, "--layout", "stargan"], EXIT_USAGE, "stargan"),
    ]
    for args, expected, message in cases:
        code, lines = _main(capsys, *args, "--out", out)
        assert code == expected and message in " ".join(lines), (args, lines)
        if expected != EXIT_USAGE or "image_size" in message:  # not a parser error: one line
            assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


def test_without_a_critic_the_summary_says_untrained(replicate_files, tmp_path, capsys):
    generator, _ = replicate_files
    code, lines = _main(capsys, "--generator", generator, "--out", tmp_path / "g.ckpt", "--image_size", "64")
    assert code == 0 and len(lines) == 2
    assert "critic: UNTRAINED" in lines[1] and "image_size 64" in lines[1]
