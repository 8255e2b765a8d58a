"""The recipes' input checks as functions: CelebA's partition file and keys, ``--val_speakers``, AU
clamping and its count in index.json, and the output folder's lock (docs/design.md section 2)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cause_pl.au import NUM_AUS
from cause_pl.cli.command import UsageError
from cause_pl.shards.encode import clamp_aus, encode_face, encode_speech
from cause_pl.shards.lock import FolderInUseError, exclusive_folder
from cause_pl.shards.schema import FACES
from cause_pl.shards.writer import Processed, clamped_au_values, plan_jobs, write_dataset
from tests.recipes.util import recipe_module


def partition(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "list_eval_partition.txt"
    path.write_text(text)
    return recipe_module("celeba").read_partition(path, tmp_path / "img", tmp_path / "of")


def test_partition_items_csvs_and_unique_dot_free_keys(tmp_path):
    items = partition(tmp_path, "000001.jpg 0\n\nmy.face.jpg 0\nmy-face.jpg 1\n000002.jpg 2\n")
    assert [item.key for item in items["train"]] == ["celeba_000001", "celeba_my-face"]
    assert [item.key for item in items["val"]] == ["celeba_my-face_2"]
    dotted = items["train"][1]
    assert dotted.image == str(tmp_path / "img" / "my.face.jpg") and dotted.csv == str(tmp_path / "of" / "my.face.csv")
    assert [item.split for item in items["test"]] == ["test"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.jpg 0\nb.jpg 0\na.jpg 0\n", "list_eval_partition.txt:3: a.jpg listed twice (lines 1 and 3)"),
        ("a.jpg 0\nb.jpg 1\na.jpg 2\n", "list_eval_partition.txt:3: a.jpg is in train (line 1) and test (line 3)"),
        ("b.jpg 1\na.jpg 1\nb.jpg 0\n", "list_eval_partition.txt:3: b.jpg is in val (line 1) and train (line 3)"),
        ("", "list_eval_partition.txt: no images listed"),
        ("\n  \n", "list_eval_partition.txt: no images listed"),
        ("a.jpg 0\na.jpg\n", "list_eval_partition.txt:2: expected '<image> <0|1|2>', got 'a.jpg'"),
    ],
)
def test_partition_refusals_name_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        partition(tmp_path, text)


@pytest.mark.parametrize(
    ("value", "speakers", "count"),
    [
        (0, 5, 0),
        (0.0, 1, 0),
        (0.01, 100, 1),
        (0.01, 2, 1),
        (0.5, 4, 2),
        (0.5, 1, 0),
        (0.01, 0, 0),
        (2, 5, 2),
        (4, 5, 4),
    ],
)
def test_validation_count(value, speakers, count):
    assert recipe_module("voxceleb2").validation_count(float(value), speakers) == count


@pytest.mark.parametrize(
    ("value", "speakers", "fragment"),
    [
        (-1, 5, "--val_speakers -1: must be 0"),
        (math.nan, 5, "--val_speakers nan: must be 0"),
        (2.5, 5, "--val_speakers 2.5: a count of speakers must be a whole number"),
        (math.inf, 5, "--val_speakers inf: a count of speakers must be a whole number"),
        (5, 5, "holds out 5 of the 5 dev speakers"),
        (0.99, 2, "holds out 2 of the 2 dev speakers"),
        (1, 0, "holds out 1 of the 0 dev speakers"),
    ],
)
def test_validation_count_refusals(value, speakers, fragment):
    with pytest.raises(UsageError, match=re.escape(fragment)):
        recipe_module("voxceleb2").validation_count(float(value), speakers)


def test_clamp_counts_only_values_strictly_outside():
    au, outside = clamp_aus(np.array([-0.0, 0.0, 5.0, 9.5, -3.0, 2.25, 5.0001]))
    assert outside == 3 and au.dtype == np.float32
    assert au.tolist() == [0.0, 0.0, 5.0, 5.0, 0.0, 2.25, 5.0]


def test_encoders_clamp_and_count():
    au = np.full((4, NUM_AUS), 1.0)
    au[1, 0], au[3, 3] = 7.0, -1.0
    speech = encode_speech("k", np.zeros((3, 8)), au, np.ones(4, dtype=bool), {})
    assert speech.clamped == 1 and speech.au.max() == 5.0 and speech.au.min() == 1.0  # frame 4 is trimmed away
    face = encode_face("k", Image.new("I;16", (8, 8), 32896), au[1], {})
    assert face.clamped == 1 and face.au[0, 0] == 5.0


def out_of_range_face(au_value: float) -> Processed:
    """A faces ``process`` result whose first AU is ``au_value``."""
    au = np.ones(NUM_AUS)
    au[0] = au_value
    return encode_face(f"face{abs(int(au_value))}", Image.new("RGB", (8, 8)), au, {})


def test_index_records_clamped_values_per_split(tmp_path, capsys):
    jobs = plan_jobs(FACES, {"train": [9.5, -3.0, 2.0], "val": [-0.0, 5.0], "test": [11.0]}, 2)
    index = write_dataset(tmp_path, FACES, jobs, out_of_range_face)
    assert clamped_au_values(index) == {"train": 2, "val": 0, "test": 1}
    assert json.loads((tmp_path / "index.json").read_text())["clamped_au_values"] == {"train": 2, "val": 0, "test": 1}


def test_lock_refuses_a_second_holder_then_frees(tmp_path):
    with exclusive_folder(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderInUseError) as refused, exclusive_folder(tmp_path):
            pass
        assert str(refused.value) == (
            f"{tmp_path} is in use by another run (pid {os.getpid()}); wait for it or choose another --out"
        )
    with exclusive_folder(tmp_path):
        pass


def test_write_dataset_into_a_locked_folder_touches_nothing(tmp_path):
    (tmp_path / "faces-train-000000.tar.partial").write_bytes(b"being written")
    with exclusive_folder(tmp_path), pytest.raises(FolderInUseError):
        write_dataset(tmp_path, FACES, plan_jobs(FACES, {"train": [1.0]}, 1), out_of_range_face)
    assert (tmp_path / "faces-train-000000.tar.partial").read_bytes() == b"being written"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lock", "faces-train-000000.tar.partial"]
