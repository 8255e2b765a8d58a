"""data_recipes/voxceleb2.py on a small VoxCeleb2-shaped tree of real m4a/mp4 files and OpenFace CSVs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from tests.builders.media import write_m4a, write_mp4
from tests.builders.openface_csv import write_video_csv
from tests.recipes.util import (
    LIPS_PART,
    SR,
    event_frame,
    marked_aus,
    read_rejected,
    read_split,
    recipe_command,
    run_recipe,
    run_recipe_from_config,
    utterance_audio,
)

FPS = 25


def add_utterance(
    root: Path,
    split: str,
    speaker: str,
    video: str,
    utt: str,
    *,
    seconds=2.0,
    click_at=1.0,
    csv_frames=None,
    style="comma",
    container="aac",
    seed=0,
    **csv_options,
) -> None:
    """Write media (m4a under aac/, H.264+AAC mp4 under mp4/) and the matching OpenFace CSV."""
    audio = utterance_audio(seconds, click_at)
    folder = root / "media" / split / container / speaker / video
    if container == "aac":
        write_m4a(folder / f"{utt}.m4a", audio, SR)
    else:
        frames = np.full((round(seconds * FPS), 32, 48, 3), 90, dtype=np.uint8)
        write_mp4(folder / f"{utt}.mp4", frames, fps=FPS, audio=audio, sample_rate=SR)
    count = csv_frames or round(seconds * FPS)
    aus = marked_aus(count, min(round(click_at * FPS), count - 1), seed)
    write_video_csv(root / "openface" / split / speaker / video / f"{utt}.csv", aus, style=style, **csv_options)


@pytest.fixture(scope="module")
def voxceleb_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vox")
    add_utterance(root, "dev", "id00001", "vidA_1-x", "00001", click_at=1.0, seed=1)
    add_utterance(root, "dev", "id00001", "vidA_1-x", "00002", click_at=0.6, seed=2, style="comma_space")
    add_utterance(root, "dev", "id00001", "vidB", "00001", seconds=3.0, click_at=2.2, seed=3)
    success = np.ones(50, dtype=int)
    success[10:15] = 0
    second_face = marked_aus(10, 0, 9) + 2.0
    add_utterance(root, "dev", "id00002", "vidC", "00001", click_at=1.4, seed=4, style="comma_space")
    add_utterance(root, "dev", "id00002", "vidC", "00002", click_at=0.8, seed=5, success=success)
    two_faces = root / "openface" / "dev" / "id00002" / "vidC" / "00003.csv"
    write_m4a(root / "media" / "dev" / "aac" / "id00002" / "vidC" / "00003.m4a", utterance_audio(2.0, 1.0), SR)
    write_video_csv(
        two_faces,
        [marked_aus(50, 25, 6), second_face],
        face_ids=[0, 1],
        frames=[None, np.arange(20, 30)],
        style="comma_space",
    )
    add_utterance(root, "dev", "id00003", "vidD", "00001", seed=7)
    add_utterance(root, "dev", "id00003", "vidD", "00002", seed=8, success=np.zeros(50, dtype=int))
    add_utterance(root, "dev", "id00003", "vidD", "00003", seconds=0.6, click_at=0.3, seed=9)
    add_utterance(root, "dev", "id00004", "vidE", "00001", csv_frames=80, seed=10)
    garbage = root / "media" / "dev" / "aac" / "id00004" / "vidE" / "00002.m4a"
    garbage.write_bytes(b"not an m4a file at all" * 50)
    write_video_csv(root / "openface" / "dev" / "id00004" / "vidE" / "00002.csv", marked_aus(50, 25, 11))
    write_m4a(root / "media" / "dev" / "aac" / "id00004" / "vidE" / "00003.m4a", utterance_audio(2.0, 1.0), SR)
    add_utterance(root, "test", "id00009", "vidT", "00001", container="mp4", click_at=1.2, seed=12)
    add_utterance(root, "test", "id00009", "vidT", "00002", container="mp4", click_at=0.4, seed=13, style="comma_space")
    return root


@pytest.fixture(scope="module")
def shards(voxceleb_tree, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vox_shards")
    run_recipe_from_config(
        "voxceleb2",
        voxceleb_tree,
        "--media",
        voxceleb_tree / "media",
        "--openface",
        voxceleb_tree / "openface",
        "--out",
        out,
        "--workers",
        "2",
        "--shard_size",
        "2",
        "--val_speakers",
        "2",
    )
    return out


def all_samples(out: Path) -> dict[str, dict]:
    return {s["__key__"]: s for split in ("train", "val", "test") for s in read_split(out, split)}


def test_counts_splits_and_index(shards):
    index = json.loads((shards / "index.json").read_text())
    counts = {split: info["samples"] for split, info in index["splits"].items()}
    assert counts["test"] == 2
    assert counts["train"] == 6 and counts["val"] == 1
    # the two held-out speakers are the first two by SHA-1 of their id: id00004 (all rejected), id00003
    assert {s["json"]["speaker"] for s in read_split(shards, "val")} == {"id00003"}
    assert {s["json"]["speaker"] for s in read_split(shards, "train")} == {"id00001", "id00002"}
    assert index["frontend"]["n_mels"] == 80 and index["frontend"]["sample_rate"] == SR
    assert len(index["stats"]["mel_mean"]) == 80 and len(index["stats"]["au_mean"]) == NUM_AUS


def test_shapes_dtypes_and_known_event_alignment(shards):
    samples = all_samples(shards)
    assert len(samples) == 9
    for key, sample in samples.items():
        mel, au, valid = sample["mel.npy"], sample["au.npy"], sample["valid.npy"]
        assert mel.dtype == np.float16 and mel.shape[1] == 80
        assert au.dtype == np.float16 and au.shape == (len(mel), NUM_AUS)
        assert valid.dtype == bool and valid.shape == (len(mel),)
        assert sample["json"]["frames"] == len(mel) and sample["json"]["fps"] == FPS
        assert "." not in key
        # the click's mel frame is the frame whose AU25 the CSV marked
        assert au[event_frame(mel), LIPS_PART] == 5.0, key
        assert int(np.argmax(au[:, LIPS_PART])) == event_frame(mel)


def test_masks_success_zero_and_second_face(shards):
    samples = all_samples(shards)
    masked = samples["id00002_vidC_00002"]["valid.npy"]
    assert not masked[10:15].any() and masked[:10].all() and masked[15:50].all()
    two_faces = samples["id00002_vidC_00003"]
    # default face is the one tracked in most frames (face 0), whose AU25 marks frame 25
    assert int(np.argmax(two_faces["au.npy"][:, LIPS_PART])) == 25
    assert samples["id00001_vidA_1-x_00002"]["json"]["video"] == "vidA_1-x"


def test_rejected_items_name_their_reason(shards):
    reasons = {Path(r["item"]).parts[-3] + "/" + Path(r["item"]).stem: r["reason"] for r in read_rejected(shards)}
    assert reasons.keys() == {"id00003/00002", "id00003/00003", "id00004/00001", "id00004/00002", "id00004/00003"}
    assert reasons["id00003/00002"].startswith("faceless")
    assert reasons["id00003/00003"].startswith("too short")
    assert reasons["id00004/00001"].startswith("misaligned") and "80" in reasons["id00004/00001"]
    assert reasons["id00004/00002"].startswith("undecodable audio") and "00002.m4a" in reasons["id00004/00002"]
    assert reasons["id00004/00003"].startswith("no OpenFace CSV")


def test_killed_run_resumes_to_identical_shards(voxceleb_tree, shards, tmp_path):
    args = [
        "--media",
        voxceleb_tree / "media",
        "--openface",
        voxceleb_tree / "openface",
        "--workers",
        "1",
        "--shard_size",
        "1",
        "--val_speakers",
        "1",
    ]
    whole = tmp_path / "whole"
    run_recipe("voxceleb2", *args, "--out", whole)
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        recipe_command("voxceleb2", *args, "--out", killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list((killed / ".parts").glob("*.tar.json"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the recipe ended before it could be killed"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "index.json").exists(), "the run was not interrupted"
    run_recipe("voxceleb2", *args, "--out", killed)
    names = sorted(p.name for p in whole.glob("*.tar"))
    assert names == sorted(p.name for p in killed.glob("*.tar")) and len(names) >= 9
    for name in names:
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    for name in ("index.json", "rejected.jsonl"):
        assert (killed / name).read_text() == (whole / name).read_text()


def test_no_media_is_a_clear_error(tmp_path):
    result = subprocess.run(
        recipe_command("voxceleb2", "--media", tmp_path, "--openface", tmp_path, "--out", tmp_path / "o"),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "no utterances under" in result.stderr
