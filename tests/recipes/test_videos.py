"""data_recipes/videos.py on a folder of real videos (mp4, mkv, mov, webm; 25 fps and others) with OpenFace CSVs
beside them or in a parallel tree, split by speaker folders or by a manifest."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.builders.media import container_encoders, write_video
from tests.builders.openface_csv import write_video_csv
from tests.recipes.util import (
    LIPS_PART,
    SR,
    event_frame,
    marked_aus,
    read_rejected,
    read_split,
    recipe_module,
    run_in_process,
    run_recipe,
    run_recipe_from_config,
    utterance_audio,
)

CONTAINERS = ("mkv", "webm", "mov")
"""Written beside the mp4s when PyAV's FFmpeg has their encoders (webm: VP9/VP8 + Opus/Vorbis)."""
OTHER_RATES = (15, 24, Fraction(30000, 1001), 30, 60)


def add_video(
    media: Path,
    relative: str,
    *,
    fps: int | Fraction = 25,
    seconds: float = 2.0,
    click_at: float = 1.0,
    audio: bool = True,
    csv_seconds: float | None = None,
    seed: int = 0,
) -> Path:
    """A video with a click at ``click_at`` s and, beside it, its OpenFace CSV at the video's rate marking
    AU25 = 5 on the rows around the click (``csv_seconds``: a CSV for another duration)."""
    frames = round(seconds * fps)
    path = media / relative
    pixels = np.full((frames, 32, 48, 3), 90, dtype=np.uint8)
    sound = utterance_audio(seconds, click_at) if audio else None
    write_video(path, pixels, fps=fps, audio=sound, sample_rate=SR)
    rows = round((csv_seconds or seconds) * fps)
    row = round(click_at * fps)
    aus = marked_aus(rows, row, seed)
    aus[row - 1 : row + 2, LIPS_PART] = 5.0  # a plateau, so any resampling in time keeps 5.0 at the click
    write_video_csv(path.with_suffix(".csv"), aus, fps=float(fps))
    return path


def mirror_csvs(media: Path, openface: Path) -> None:
    """Copy every CSV under ``media`` to the same place under ``openface``."""
    for csv in media.rglob("*.csv"):
        target = openface / csv.relative_to(media)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(csv, target)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    media = root / "media"
    add_video(media, "alice/clip1.mp4", click_at=1.0, seed=1)
    add_video(media, "alice/talks/intro.take1.mp4", click_at=0.6, seed=2)
    for number, container in enumerate(CONTAINERS):
        if container_encoders(container):
            add_video(media, f"bob/{container}_clip.{container}", click_at=0.8 + 0.2 * number, seed=3 + number)
    add_video(media, "carol/ok.mp4", click_at=1.2, seed=7)
    add_video(media, "carol/silent.mp4", audio=False, seed=8)
    add_video(media, "carol/other_length.mp4", csv_seconds=3.2, seed=9)
    add_video(media, "dave/one.mp4", click_at=0.4, seed=10)
    mirror_csvs(media, root / "openface")
    (root / "openface" / "dave" / "one.csv").unlink()  # only beside its video: --openface finds none
    (root / "media" / "notes.txt").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def beside(tree, tmp_path_factory) -> Path:
    """Speakers from the folders, CSVs beside the videos, one speaker each held out for val and test."""
    out = tmp_path_factory.mktemp("videos_beside")
    flags = ["--media", tree / "media", "--out", out, "--workers", "2", "--shard_size", "2"]
    run_recipe_from_config("videos", tree, *flags, "--val_speakers", "1", "--test_speakers", "1")
    return out


@pytest.fixture(scope="module")
def manifest_run(tree, tmp_path_factory) -> Path:
    """Splits from a manifest, CSVs from the parallel tree."""
    out = tmp_path_factory.mktemp("videos_manifest")
    manifest = tree / "manifest.csv"
    rows = ["alice/clip1.mp4,spk_a,train", "alice/talks/intro.take1.mp4,spk_a,train", "carol/ok.mp4,spk_c,val"]
    rows += ["dave/one.mp4,spk_d,test", "carol/silent.mp4,spk_c,val"]
    manifest.write_text("path, speaker, split\n" + "\n".join(rows) + "\n")
    flags = ["--media", tree / "media", "--openface", tree / "openface", "--manifest", manifest]
    run_recipe("videos", *flags, "--out", out, "--workers", "1")
    return out


def samples_of(out: Path) -> dict[str, dict]:
    index = json.loads((out / "index.json").read_text())
    return {sample["__key__"]: sample for split in index["splits"] for sample in read_split(out, split)}


def assert_aligned(sample: dict) -> None:
    """The click's mel frame carries the AU25 = 5 the CSV put at the click."""
    mel, au = sample["mel.npy"], sample["au.npy"]
    assert sample["json"]["frames"] == len(mel) == len(au) and sample["json"]["fps"] == 25
    assert au[event_frame(mel), LIPS_PART] == 5.0, sample["__key__"]
    assert sample["valid.npy"].all()


def test_folders_give_speakers_and_every_container_aligns(beside):
    samples = samples_of(beside)
    assert "alice_alice_talks_intro-take1" in samples and "alice_alice_clip1" in samples
    for sample in samples.values():
        assert_aligned(sample)
    speakers = {split: {s["json"]["speaker"] for s in read_split(beside, split)} for split in ("train", "val", "test")}
    assert set().union(*speakers.values()) == {"alice", "bob", "carol", "dave"}
    assert all(len(names) == 1 for name, names in speakers.items() if name != "train"), speakers
    assert samples["alice_alice_talks_intro-take1"]["json"]["video"] == "alice/talks/intro.take1.mp4"


@pytest.mark.parametrize("container", CONTAINERS)
def test_container_is_read(beside, container):
    if not container_encoders(container):
        pytest.skip(f"PyAV's FFmpeg cannot encode {container}")
    assert_aligned(samples_of(beside)[f"bob_bob_{container}_clip"])


def test_unusable_videos_are_rejected_with_the_reason(beside):
    reasons = {Path(record["item"]).name: record["reason"] for record in read_rejected(beside)}
    assert reasons.keys() == {"silent.mp4", "other_length.mp4"}
    assert reasons["silent.mp4"].startswith("undecodable audio") and "no audio stream" in reasons["silent.mp4"]
    assert reasons["other_length.mp4"].startswith("misaligned") and "80" in reasons["other_length.mp4"]


def test_manifest_splits_and_parallel_openface_tree(manifest_run, tree):
    index = json.loads((manifest_run / "index.json").read_text())
    assert {split: info["samples"] for split, info in index["splits"].items()} == {"train": 2, "val": 1, "test": 0}
    assert {s["json"]["speaker"] for s in read_split(manifest_run, "val")} == {"spk_c"}
    reasons = {Path(record["item"]).name: record["reason"] for record in read_rejected(manifest_run)}
    assert reasons["one.mp4"] == f"no OpenFace CSV at {tree / 'openface' / 'dave' / 'one.csv'}"
    assert "no audio stream" in reasons["silent.mp4"]


def test_other_frame_rates_align_in_time(tmp_path):
    media = tmp_path / "media"
    for number, fps in enumerate(OTHER_RATES):
        container = ("mp4", "mkv", "webm")[number % 3]  # 15 mp4, 24 mkv, 29.97 webm, 30 mp4, 60 mkv
        container = container if container == "mp4" or container_encoders(container) else "mp4"
        add_video(media, f"s{number}/clip.{container}", fps=fps, click_at=0.8 + 0.1 * number, seed=number)
    run_recipe("videos", "--media", media, "--out", tmp_path / "out", "--val_speakers", "0", "--workers", "1")
    assert read_rejected(tmp_path / "out") == []
    samples = samples_of(tmp_path / "out")
    assert len(samples) == len(OTHER_RATES)
    for sample in samples.values():
        assert_aligned(sample)


def bad_run(work: Path, *args: str | Path) -> int:
    """Exit code of a refused run in this process, which must write nothing."""
    code = run_in_process("videos", "--out", work / "out", *args)
    assert not (work / "out").exists()
    return code


@pytest.mark.parametrize(
    ("rows", "code", "fragment"),
    [
        ("path,speaker,split\na/x.mp4,a,train\na/x.mp4,a,dev\n", 1, "manifest.csv:3: split 'dev' is not one of"),
        ("path,speaker,split\na/gone.mp4,a,train\n", 1, "manifest.csv:2: no such video"),
        ("path,speaker,split\na/x.mp4,a,train\na/x.mp4,b,val\n", 1, "manifest.csv:3: a/x.mp4 listed twice"),
        ("path,split\na/x.mp4,train\n", 1, "needs the columns path,speaker"),
        ("path,speaker\n", 1, "manifest.csv: no videos listed"),
        ("path,speaker\na/x.mp4,\n", 1, "manifest.csv:2: every row needs a path and a speaker"),
    ],
)
def test_bad_manifest_is_one_line(tmp_path, capsys, rows, code, fragment):
    (tmp_path / "media" / "a").mkdir(parents=True)
    (tmp_path / "media" / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "manifest.csv").write_text(rows)
    assert bad_run(tmp_path, "--media", tmp_path / "media", "--manifest", tmp_path / "manifest.csv") == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("videos.py: ") and fragment in err, err


@pytest.mark.parametrize(
    ("layout", "flags", "code", "fragment"),
    [
        ({}, ["--media", "{w}/gone"], 3, "--media: no such folder"),
        ({"a/x.mp4": ""}, ["--media", "{w}/media", "--openface", "{w}/gone"], 3, "--openface: no such folder"),
        ({"a/x.mp4": ""}, ["--media", "{w}/media", "--manifest", "{w}/gone.csv"], 3, "--manifest: file not found"),
        ({"x.mp4": ""}, ["--media", "{w}/media"], 1, "x.mp4: not in a speaker folder"),
        ({"a/x.txt": ""}, ["--media", "{w}/media"], 1, "no videos"),
        ({"a/x.mp4": "", "a/x.mkv": ""}, ["--media", "{w}/media"], 1, "would share the CSV"),
        ({"a/x.mp4": "", "b/x.mp4": ""}, ["--media", "{w}/media", "--val_speakers", "1", "--test_speakers", "1"], 2,
         "--val_speakers 1 and --test_speakers 1 hold out 2 of the 2 speakers"),
        ({"a/x.mp4": "", "b/x.mp4": ""}, ["--media", "{w}/media", "--test_speakers", "2.5"], 2,
         "--test_speakers 2.5: a count of speakers must be a whole number"),
        ({"a/x.mp4": "", "m.csv": "path,speaker,split\na/x.mp4,a,train\n"},
         ["--media", "{w}/media", "--manifest", "{w}/media/m.csv", "--val_speakers", "0"], 2,
         "--val_speakers: the manifest's split column already assigns every video"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line(tmp_path, capsys, layout, flags, code, fragment):
    for name, text in layout.items():
        (tmp_path / "media" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "media" / name).write_text(text)
    assert bad_run(tmp_path, *(flag.format(w=tmp_path) for flag in flags)) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("videos.py: ") and fragment in err, err


def test_held_out_speakers_are_stable_and_keys_unique(tmp_path):
    module = recipe_module("videos")
    listed = [module.Listed(Path(name), speaker) for name, speaker in (("a/x.y.mp4", "a"), ("a/x-y.mp4", "a"))]
    keys = [item.key for item in module.utterances(listed, tmp_path, None)]
    assert keys == ["a_a_x-y", "a_a_x-y_2"]
    listed = [module.Listed(Path(f"s{number}/v.mp4"), f"s{number}") for number in range(6)]
    items = module.utterances(listed, tmp_path, None)
    splits = module.split_items(listed, items, 2, 1)
    again = module.split_items(listed[::-1], items[::-1], 2, 1)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [3, 2, 1]
    assert {name: {i.speaker for i in split} for name, split in splits.items()} == {
        name: {i.speaker for i in split} for name, split in again.items()
    }
