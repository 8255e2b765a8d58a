"""data_recipes/synthetic.py: both corpora as shards, deterministic, split by speaker and identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cause_pl.au import NUM_AUS
from cause_pl.synthetic.faces import synth_face
from cause_pl.synthetic.speech import synth_utterance
from tests.recipes.util import read_split, run_recipe

ARGS = (
    "--speakers",
    "6",
    "--utterances",
    "3",
    "--faces",
    "40",
    "--identities",
    "10",
    "--face_size",
    "32",
    "--shard_size",
    "4",
    "--face_shard_size",
    "4",
    "--max_seconds",
    "3",
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    result = run_recipe("synthetic", "--out", out, "--workers", "2", *ARGS)
    return out, result.stdout


def test_speech_shards_match_the_generator(corpora):
    out, stdout = corpora
    assert "speech_au: train 12, val 3, test 3" in stdout
    index = json.loads((out / "speech_au" / "index.json").read_text())
    assert index["frontend"]["hop_length"] == 640
    speakers = {
        split: {s["json"]["speaker"] for s in read_split(out / "speech_au", split)}
        for split in ("train", "val", "test")
    }
    assert len(speakers["train"]) == 4 and len(speakers["val"]) == 1 and len(speakers["test"]) == 1
    assert not (speakers["train"] & speakers["val"]) and not (speakers["val"] & speakers["test"])
    for sample in read_split(out / "speech_au", "val"):
        speaker, index_ = (int(part) for part in sample["__key__"].replace("spk", "").split("_utt"))
        truth = synth_utterance(speaker, index_, seed=0, max_seconds=3)
        assert sample["mel.npy"].shape == (len(truth.aus), 80)
        assert np.allclose(sample["au.npy"], truth.aus, atol=0.01)
        assert np.array_equal(sample["valid.npy"], truth.valid)


def test_face_shards_match_the_generator(corpora):
    out, stdout = corpora
    assert "faces: train 32, val 4, test 4" in stdout
    samples = read_split(out / "faces", "test")
    assert {s["json"]["identity"] for s in samples} == {9}
    for sample in samples:
        assert sample["jpg"].shape == (32, 32, 3) and sample["au.npy"].shape == (NUM_AUS,)
        face = synth_face(int(sample["__key__"].split("face")[-1]), seed=0, size=32, num_identities=10)
        assert np.allclose(sample["au.npy"], face.aus)
        assert np.abs(sample["jpg"].astype(int) - np.asarray(face.image, dtype=int)).mean() < 6


def test_same_seed_gives_identical_shards(corpora, tmp_path):
    out, _ = corpora
    run_recipe("synthetic", "--out", tmp_path, "--workers", "1", *ARGS)
    for path in sorted(out.rglob("*.tar")):
        assert (tmp_path / path.relative_to(out)).read_bytes() == path.read_bytes(), path.name
