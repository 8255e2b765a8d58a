"""Real hostile files, built once per session beside (never inside) the ``quick_demo`` fixture's files.

:func:`build_kit` writes audio (soundfile, PyAV), images (Pillow), damaged checkpoints and damaged copies
of the demo's shards (:mod:`tests.hostile.shards`) into one folder and returns a :class:`Kit`: attribute
access to every path, the demo's own files included (``kit.speech``, ``kit.cause``, ``kit.vox``, ...).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from tests.builders.media import tone, write_flac, write_m4a, write_mp4, write_wav
from tests.hostile.shards import build_shard_variants

SAMPLE_RATE = 16000


class Kit:
    """Paths by name: ``kit.nan_wav``; ``kit.names`` lists them."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = dict(paths)

    def __getattr__(self, name: str) -> Path:
        try:
            return self.__dict__["paths"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def names(self) -> list[str]:
        return sorted(self.paths)


def build_kit(demo_files: dict[str, Path], folder: Path) -> Kit:
    """Every hostile input of the package, written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "speech": demo_files["speech"],
        "face": demo_files["face"],
        "cause": demo_files["cause_checkpoint"],
        "gan": demo_files["ganimation_checkpoint"],
        "vox": demo_files["data"] / "speech_au",
        "faces": demo_files["data"] / "faces",
    }
    for builder in (audio_files, image_files, checkpoint_files, misc_files):
        paths.update(builder(folder, paths))
    paths.update(build_shard_variants(folder / "shards", paths["vox"], paths["faces"]))
    return Kit(paths)


def audio_files(folder: Path, known: dict[str, Path]) -> dict[str, Path]:
    second = tone(1.0, SAMPLE_RATE)
    paths = {
        "truncated_wav": write_wav(folder / "truncated.wav", second, SAMPLE_RATE),
        "huge_size_wav": write_wav(folder / "huge_size.wav", second, SAMPLE_RATE),
        "video_only_mp4": write_mp4(folder / "video_only.mp4", np.zeros((5, 32, 32, 3), np.uint8), audio=None),
        "audio_dir": folder / "folder.wav",
        "empty_m4a": folder / "empty.m4a",
        "nan_wav": write_wav(folder / "nan.wav", _with(second, 100, np.nan), SAMPLE_RATE, "FLOAT"),
        "inf_wav": write_wav(folder / "inf.wav", _with(second, 100, np.inf), SAMPLE_RATE, "FLOAT"),
        "huge_wav": write_wav(folder / "huge.wav", second * np.float32(1e30), SAMPLE_RATE, "FLOAT"),
        "no_samples_wav": write_wav(folder / "no_samples.wav", np.zeros((0, 1), np.float32), SAMPLE_RATE),
        "text_mp3": folder / "speech.mp3",
        "stereo_flac": write_flac(folder / "stereo8k.flac", tone(1.0, 8000, channels=2), 8000),
        "short_m4a": write_m4a(folder / "short.m4a", tone(0.2, 44100), 44100),
    }
    data = paths["truncated_wav"].read_bytes()
    paths["truncated_wav"].write_bytes(data[: 44 + (len(data) - 44) // 2])  # the header still says 1 s
    data = bytearray(paths["huge_size_wav"].read_bytes())
    data_at = data.index(b"data") + 4
    data[data_at : data_at + 4] = struct.pack("<I", 0xFFFFFFF0)  # claims 4 GiB of samples
    paths["huge_size_wav"].write_bytes(bytes(data))
    wav = write_wav(folder / "one_second.wav", second, SAMPLE_RATE).read_bytes()
    paths["one_hertz_wav"] = _patched(wav, 24, struct.pack("<I", 1), folder / "one_hertz.wav")  # fmt: sample rate
    paths["many_channels_wav"] = _patched(wav, 22, struct.pack("<H", 100), folder / "many_channels.wav")  # channels
    paths["audio_dir"].mkdir()
    paths["empty_m4a"].write_bytes(b"")
    paths["text_mp3"].write_text("ID3 this is a text file, not an mp3\n")
    return paths


def _patched(data: bytes, offset: int, field: bytes, path: Path) -> Path:
    """``data`` with ``field`` written at ``offset`` (a header field), saved as ``path``."""
    path.write_bytes(data[:offset] + field + data[offset + len(field) :])
    return path


def _with(wave: np.ndarray, at: int, value: float) -> np.ndarray:
    wave = wave.copy()
    wave[at] = value
    return wave


def image_files(folder: Path, known: dict[str, Path]) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    paths = {name: folder / file for name, file in IMAGE_NAMES.items()}
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(paths["truncated_png"])
    data = paths["truncated_png"].read_bytes()
    paths["truncated_png"].write_bytes(data[: len(data) // 2])
    Image.fromarray(np.full((48, 64), 32896, np.uint16)).save(paths["grey16_png"])  # 16-bit mid grey
    assert Image.open(paths["grey16_png"]).mode.startswith("I")
    paths["bomb_png"].write_bytes(png_header_only(40_000, 40_000))
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((30, 30, 30), (250, 250, 250))]
    frames[0].save(paths["animated_gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("CMYK", (40, 40), (0, 0, 0, 200)).save(paths["cmyk_jpg"], quality=95)  # a dark grey in CMYK
    paths["empty_png"].write_bytes(b"")
    paths["face_dir"].mkdir()
    return paths


IMAGE_NAMES = {
    "truncated_png": "truncated.png",
    "grey16_png": "grey16.png",
    "bomb_png": "bomb.png",
    "animated_gif": "animated.gif",
    "cmyk_jpg": "cmyk.jpg",
    "empty_png": "empty.png",
    "face_dir": "face_folder.png",
}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` 1-bit pixels, with a tiny IDAT (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def checkpoint_files(folder: Path, known: dict[str, Path]) -> dict[str, Path]:
    cause = torch.load(known["cause"], weights_only=True)
    gan = torch.load(known["gan"], weights_only=True)
    data = known["cause"].read_bytes()
    paths = {
        "truncated_ckpt": folder / "truncated.ckpt",
        "zip_ckpt": folder / "archive.ckpt",
        "empty_ckpt": folder / "empty.ckpt",
        "nan_weights_ckpt": _save(folder / "nan_weights.ckpt", _poisoned(cause, "net.")),
        "nan_stats_ckpt": _save(folder / "nan_stats.ckpt", _poisoned(cause, "mel_std")),
        "other_arch_ckpt": _save(folder / "other_arch.ckpt", _hparams(cause, arch=_other_arch(cause))),
        "no_state_ckpt": _save(folder / "no_state.ckpt", {"epoch": 3, "global_step": 10}),
        "unknown_ckpt": _save(folder / "unknown.ckpt", {"state_dict": {"encoder.weight": torch.zeros(2)}}),
        "gan_no_state_ckpt": _save(
            folder / "gan_no_state.ckpt", {k: v for k, v in gan.items() if k != "ganimation_training_state"}
        ),
        "gan_nan_ckpt": _save(folder / "gan_nan.ckpt", _poisoned(gan, "generator.")),
    }
    paths["truncated_ckpt"].write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(paths["zip_ckpt"], "w") as archive:
        archive.writestr("archive/readme.txt", "a zip file, but not a checkpoint")
    paths["empty_ckpt"].write_bytes(b"")
    return paths


def _save(path: Path, checkpoint: dict[str, Any]) -> Path:
    torch.save(checkpoint, path)
    return path


def _poisoned(checkpoint: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A copy whose first floating state-dict entry starting with ``prefix`` holds a NaN."""
    state = dict(checkpoint["state_dict"])
    name = next(k for k, v in state.items() if k.startswith(prefix) and v.is_floating_point())
    state[name] = state[name].clone().view(-1).index_fill(0, torch.tensor([0]), float("nan")).view_as(state[name])
    return {**checkpoint, "state_dict": state}


def _hparams(checkpoint: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**checkpoint, "hyper_parameters": {**checkpoint["hyper_parameters"], **changes}}


def _other_arch(checkpoint: dict[str, Any]) -> str:
    return "cnn" if checkpoint["hyper_parameters"]["arch"] != "cnn" else "mlp"


RANDOM_SWEEP = """name: random_lr
method: random
metric: {name: val/mae, goal: minimize}
parameters:
  model.init_args.lr: {distribution: log_uniform_values, min: 0.0001, max: 0.01}
command: [cause-pl, fit, "${args}"]
"""

GRID_SWEEP = """name: grid_lr
method: grid
metric: {name: val/mae, goal: minimize}
parameters:
  model.init_args.lr: {values: [0.001, 0.01]}
command: [cause-pl, fit, "${args}"]
"""


def misc_files(folder: Path, known: dict[str, Path]) -> dict[str, Path]:
    paths = {
        "plain_file": folder / "plain_file",
        "text_ckpt": folder / "notes.ckpt",  # a pickle stream that breaks torch's unpickler (IndexError inside)
        "prose_ckpt": folder / "prose.ckpt",  # one weights_only=True refuses outright
        "garbage_wav": folder / "garbage.wav",
        "empty_wav": folder / "empty.wav",
        "text_face": folder / "face.txt",
        "no_index": folder / "no_index",
        "bad_yaml": folder / "broken.yaml",
        "bad_sweep": folder / "bad_sweep.yaml",
        "random_sweep": folder / "random_sweep.yaml",
        "grid_sweep": folder / "grid_sweep.yaml",
        "not_yaml_sweep": folder / "not_yaml_sweep.yaml",
        "binary_sweep": folder / "binary_sweep.yaml",
        "inverted_sweep": folder / "inverted_sweep.yaml",
        "escaping_sweep": folder / "escaping_sweep.yaml",
    }
    paths["plain_file"].write_text("a file where a folder is expected")
    paths["text_ckpt"].write_text("text\n")
    paths["prose_ckpt"].write_text("not a checkpoint\n")
    paths["garbage_wav"].write_bytes(b"RIFF garbage, not a wave file")
    paths["empty_wav"].write_bytes(b"")
    paths["text_face"].write_text("not an image")
    paths["no_index"].mkdir()
    paths["bad_yaml"].write_text("trainer: [unclosed\n  max_epochs: 1\n")
    paths["bad_sweep"].write_text(RANDOM_SWEEP.replace("method: random", "method: bogus"))
    paths["random_sweep"].write_text(RANDOM_SWEEP)
    paths["grid_sweep"].write_text(GRID_SWEEP)
    paths["not_yaml_sweep"].write_text("name: [unclosed\nmethod: grid\n")
    paths["binary_sweep"].write_bytes(b"\xff\xfe\x00 a binary file\x00")
    paths["inverted_sweep"].write_text(RANDOM_SWEEP.replace("min: 0.0001, max: 0.01", "min: 0.01, max: 0.0001"))
    paths["escaping_sweep"].write_text(GRID_SWEEP.replace("name: grid_lr", "name: ../../escaped"))
    return paths
