"""Hostile inputs to the data recipes (``data_recipes/*.py``), run in this process as ``NAME.py ARGS``.

Each row builds its inputs in an empty work folder and states the whole outcome: the exit code; on failure
one line ``NAME.py: ...`` with the named fragments (or a parser's usage text), no traceback and the work
folder byte for byte as before; on success what the output holds (shards, ``rejected.jsonl``, index.json's
``clamped_au_values``). A bad item is rejected alone, never the run; a bad partition, flag or folder stops
the run before anything is written. The lock on ``--out`` is tested against a real second process.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cause_pl.au import NUM_AUS
from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from tests.builders.media import tone, write_m4a
from tests.builders.openface_csv import write_image_csv, write_video_csv
from tests.hostile.harness import assert_one_line, snapshot
from tests.recipes.util import read_rejected, read_split, run_in_process

ImageWriter = Callable[[Path], None]


def jpeg(path: Path) -> None:
    Image.new("RGB", (40, 40), (90, 120, 150)).save(path, "JPEG", quality=95)


def png16(path: Path) -> None:
    """16-bit grey 32896 everywhere: 128 in 8 bits (``convert("RGB")`` would make it white)."""
    Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16)).save(path, "PNG")


def truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (90, 120, 150)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def text_file(path: Path) -> None:
    path.write_text("this is a text file, not a photo\n")


def bomb_png(path: Path) -> None:
    """The header of a 10000 x 10000 PNG: more pixels than Pillow's limit, in 60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def celeba_inputs(
    work: Path, images: Mapping[str, ImageWriter], partition: str | None = None, aus: Sequence[float] | None = None
) -> list:
    """A CelebA-shaped folder: each image, a confident FaceLandmarkImg CSV for it, all listed as train."""
    (work / "images").mkdir()
    (work / "openface").mkdir()
    for name, write in images.items():
        write(work / "images" / name)
        write_image_csv(
            work / "openface" / f"{Path(name).stem}.csv", [(np.asarray(aus or [1.0] * NUM_AUS), 0.95, None)]
        )
    (work / "partition.txt").write_text("".join(f"{name} 0\n" for name in images) if partition is None else partition)
    return [
        *("--images", work / "images", "--openface", work / "openface", "--partition", work / "partition.txt"),
        *("--size", "32"),
    ]


def voxceleb_inputs(work: Path, speakers: int = 3, aus: np.ndarray | None = None) -> list:
    """A VoxCeleb2-shaped tree: one utterance per dev speaker; with ``aus``, real audio and CSVs, else stubs."""
    for number in range(1, speakers + 1):
        media = work / "media" / "dev" / "aac" / f"id{number:05d}" / "vid" / "00001.m4a"
        if aus is None:
            media.parent.mkdir(parents=True)
            media.write_bytes(b"never decoded: the run stops or rejects it first")
        else:
            write_m4a(media, tone(2.0, 16000), 16000)
            write_video_csv(work / "openface" / "dev" / f"id{number:05d}" / "vid" / "00001.csv", aus)
    (work / "openface").mkdir(exist_ok=True)
    return ["--media", work / "media", "--openface", work / "openface"]


def out_of_range_aus(frames: int) -> np.ndarray:
    aus = np.full((frames, NUM_AUS), 1.0)
    aus[3, 0], aus[4, 1], aus[5, 2], aus[6, 3] = 9.5, -3.0, 5.0, -0.0  # two outside, two on the edges
    return aus


@dataclass(frozen=True)
class RecipeCase:
    """One hostile input to a recipe and the outcome expected."""

    id: str
    recipe: str
    argv: Callable[[Path], list]
    code: int
    fragments: Sequence[str] = ()
    usage: bool = False
    check: Callable[[Path, str], None] | None = None
    """``(out, stdout)`` of a successful run."""


def samples(out: Path) -> dict[str, dict]:
    return {sample["__key__"]: sample for sample in read_split(out, "train")}


def clamped(out: Path) -> dict[str, int]:
    return json.loads((out / "index.json").read_text())["clamped_au_values"]


def rejected_alone(prefix: str) -> Callable[[Path, str], None]:
    """The check of a run with one good and one bad image: the bad one in rejected.jsonl, the good one kept."""

    def check(out: Path, stdout: str) -> None:
        (record,) = read_rejected(out)
        assert record["item"].endswith("bad.jpg") and record["split"] == "train"
        assert record["reason"].startswith(prefix), record
        assert list(samples(out)) == ["celeba_good"] and "rejected: 1" in stdout

    return check


def check_png16(out: Path, stdout: str) -> None:
    face = samples(out)["celeba_grey16"]["jpg"]
    assert face.shape == (32, 32, 3) and np.abs(face.astype(int) - 128).max() <= 2


def check_dotted_names(out: Path, stdout: str) -> None:
    found = {key: sample["json"]["image"] for key, sample in samples(out).items()}
    assert found == {"celeba_my-face": "my.face.jpg", "celeba_my-face_2": "my-face.jpg"}
    assert read_rejected(out) == []


def check_clamped_face(out: Path, stdout: str) -> None:
    au = samples(out)["celeba_good"]["au.npy"]
    assert au[:4].tolist() == [5.0, 0.0, 5.0, 0.0] and (au[4:] == 1.0).all()
    assert clamped(out) == {"train": 2} and "clamped into the range: train 2" in stdout


def check_clamped_speech(out: Path, stdout: str) -> None:
    (sample,) = samples(out).values()
    au = sample["au.npy"].astype(np.float32)
    assert au[3, 0] == 5.0 and au[4, 1] == 0.0 and au.min() >= 0.0 and au.max() <= 5.0
    assert clamped(out) == {"train": 2} and "clamped into the range: train 2" in stdout


def check_no_validation(out: Path, stdout: str) -> None:
    assert list(json.loads((out / "index.json").read_text())["splits"]) == ["train"]
    records = read_rejected(out)
    assert len(records) == 3 and {r["split"] for r in records} == {"train"}
    assert all(r["reason"].startswith("no OpenFace CSV") for r in records)


def good_and(bad: ImageWriter) -> Callable[[Path], list]:
    return lambda work: celeba_inputs(work, {"good.jpg": jpeg, "bad.jpg": bad})


def partition_of(text: str) -> Callable[[Path], list]:
    return lambda work: celeba_inputs(work, {"a.jpg": jpeg, "b.jpg": jpeg}, partition=text)


def celeba_missing(folder: str) -> Callable[[Path], list]:
    def argv(work: Path) -> list:
        return [work / "gone" if arg == work / folder else arg for arg in celeba_inputs(work, {"a.jpg": jpeg})]

    return argv


def vox(*extra: str) -> Callable[[Path], list]:
    return lambda work: [*voxceleb_inputs(work), *extra]


BAD_PARTITIONS = {
    "partition_listed_twice": ("a.jpg 0\nb.jpg 0\na.jpg 0\n", "partition.txt:3: a.jpg listed twice (lines 1 and 3)"),
    "partition_leak": ("a.jpg 0\nb.jpg 1\na.jpg 2\n", "partition.txt:3: a.jpg is in train (line 1) and test (line 3)"),
    "partition_empty": ("\n\n", "partition.txt: no images listed"),
    "partition_bad_line": ("a.jpg 0\nb.jpg train\n", "partition.txt:2: expected '<image> <0|1|2>'"),
}
BAD_IMAGES = {
    "image_truncated_jpeg": (truncated_jpeg, "not a readable image (Truncated File Read"),
    "image_text_file": (text_file, "not a readable image (cannot identify image file"),
    "image_decompression_bomb": (bomb_png, "too many pixels, refused as a possible decompression bomb"),
}
BAD_VAL_SPEAKERS = {  # 3 dev speakers
    "-1": "--val_speakers -1: must be 0 (no validation split)",
    "2.5": "--val_speakers 2.5: a count of speakers must be a whole number",
    "3": "--val_speakers 3 holds out 3 of the 3 dev speakers: none would be left to train on",
}
BAD_SYNTHETIC = {
    "synthetic_two_speakers": (["--speakers", "2"], "speakers must be >= 3 (train, val and test each need one), got 2"),
    "synthetic_negative_speakers": (["--speakers", "-4"], "speakers must be >= 3"),
    "synthetic_one_identity": (["--identities", "1"], "identities must be >= 3"),
}
FACE_AUS = [9.5, -3.0, 5.0, -0.0] + [1.0] * (NUM_AUS - 4)

CASES = [
    *(RecipeCase(id, "celeba", partition_of(text), EXIT_DATA, (line,)) for id, (text, line) in BAD_PARTITIONS.items()),
    *(RecipeCase(id, "celeba", good_and(bad), 0, check=rejected_alone(why)) for id, (bad, why) in BAD_IMAGES.items()),
    *(RecipeCase(f"val_speakers_{v}", "voxceleb2", vox("--val_speakers", v), EXIT_USAGE, (line,))
      for v, line in BAD_VAL_SPEAKERS.items()),
    *(RecipeCase(id, "synthetic", lambda w, a=args: a, EXIT_USAGE, (line,))
      for id, (args, line) in BAD_SYNTHETIC.items()),
    RecipeCase("val_speakers_nan", "voxceleb2", vox("--val_speakers", "nan"), EXIT_USAGE,
               ('"val_speakers"', "Got value: nan"), usage=True),
    RecipeCase("val_speakers_zero", "voxceleb2", vox("--val_speakers", "0"), 0, check=check_no_validation),
    RecipeCase("celeba_no_images_folder", "celeba", celeba_missing("images"), EXIT_OS, ("--images: no such folder",)),
    RecipeCase("celeba_no_openface_folder", "celeba", celeba_missing("openface"), EXIT_OS, ("--openface: no such",)),
    RecipeCase("celeba_no_partition", "celeba", celeba_missing("partition.txt"), EXIT_OS, ("--partition: file not",)),
    RecipeCase("voxceleb2_no_media", "voxceleb2", lambda w: ["--media", w / "gone", "--openface", w], EXIT_OS,
               ("--media: no such folder",)),
    RecipeCase("voxceleb2_no_openface", "voxceleb2", lambda w: [*vox()(w)[:2], "--openface", w / "gone"], EXIT_OS,
               ("--openface: no such folder",)),
    RecipeCase("image_16bit_png", "celeba", lambda w: celeba_inputs(w, {"grey16.png": png16}), 0, check=check_png16),
    RecipeCase("image_dotted_names", "celeba", lambda w: celeba_inputs(w, {"my.face.jpg": jpeg, "my-face.jpg": jpeg}),
               0, check=check_dotted_names),
    RecipeCase("au_out_of_range_face", "celeba", lambda w: celeba_inputs(w, {"good.jpg": jpeg}, aus=FACE_AUS), 0,
               check=check_clamped_face),
    RecipeCase("au_out_of_range_speech", "voxceleb2", lambda w: voxceleb_inputs(w, 1, out_of_range_aus(50)), 0,
               check=check_clamped_speech),
]  # fmt: skip


def assert_parser_error(err: str, prog: str, fragments: Sequence[str]) -> None:
    """jsonargparse's refusal of a value: the usage text, then ``error:`` with the key and the value."""
    assert err.startswith(f"usage: {prog} ") and "Traceback" not in err, err[-3000:]
    message = err[err.index("\nerror: ") :]
    assert all(fragment in message for fragment in fragments), message


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_hostile_recipe_input(case: RecipeCase, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [*case.argv(work), "--out", work / "out", "--workers", "1"]
    before = snapshot(work)
    code = run_in_process(case.recipe, *argv)
    stdout, err = capsys.readouterr()
    assert code == case.code, err[-3000:]
    assert "Traceback" not in err
    if code == 0:
        assert case.check is not None
        case.check(work / "out", stdout)
        return
    (assert_parser_error if case.usage else assert_one_line)(err, f"{case.recipe}.py", case.fragments)
    assert snapshot(work) == before  # nothing written, inputs untouched


HOLD_LOCK = (
    "import sys; from pathlib import Path; from cause_pl.shards.lock import exclusive_folder\n"
    "with exclusive_folder(Path(sys.argv[1])):\n    print('locked', flush=True); sys.stdin.read()\n"
)


def test_out_in_use_by_another_process_then_free_after_kill_9(tmp_path, capsys):
    args = celeba_inputs(tmp_path, {"good.jpg": jpeg})
    out = tmp_path / "out"
    out.mkdir()
    (out / "faces-train-000000.tar.partial").write_bytes(b"the first run is writing this shard")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        before = snapshot(out)
        assert run_in_process("celeba", *args, "--out", out, "--workers", "1") == EXIT_DATA
        message = f"{out} is in use by another run (pid {holder.pid}); wait for it or choose another --out"
        assert_one_line(capsys.readouterr().err, "celeba.py", [message])
        assert snapshot(out) == before  # the first run's partial shard is still there
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
    assert run_in_process("celeba", *args, "--out", out, "--workers", "1") == 0  # kill -9 left no stale lock
    assert list(samples(out)) == ["celeba_good"] and not list(out.glob("*.partial"))
