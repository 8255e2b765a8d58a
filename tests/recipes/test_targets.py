"""--targets of the talking-head recipes (videos.py, voxceleb2.py): AU subsets from OpenFace CSVs, and emotion
distributions from per-frame CSVs of another tool at another frame rate, found by --labels_csv_suffix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cause_pl.au import AU_COLUMNS
from cause_pl.targets import FERPLUS_EMOTIONS, PRESETS
from tests.builders.media import write_m4a, write_video
from tests.builders.openface_csv import CsvTable, write_video_csv
from tests.recipes.util import (
    SR,
    marked_aus,
    read_rejected,
    read_split,
    recipe_module,
    run_in_process,
    utterance_audio,
)

SUFFIX = ".emotions.csv"
EMOTION_FPS = 30


def emotion_table(seconds: float, seed: int, scale: float = 1.0, spaced: bool = False) -> CsvTable:
    """Smoothly changing FERPlus probabilities (times ``scale``, as a model's loosely normalised outputs) at
    30 fps, one row per video frame, with a ``timestamp`` column (``" timestamp"`` when ``spaced``)."""
    rng = np.random.default_rng(seed)
    times = np.arange(round(seconds * EMOTION_FPS)) / EMOTION_FPS
    logits = 2.0 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, 8) * times[:, None] + rng.uniform(0, 6, 8))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True) * scale
    header = ["frame", " timestamp" if spaced else "timestamp", *FERPLUS_EMOTIONS]
    rows = [
        [str(k + 1), repr(float(t)), *(f"{p:.5f}" for p in row)]
        for k, (t, row) in enumerate(zip(times, probs, strict=True))
    ]
    return CsvTable(header, rows)


def expected_on_frames(table: CsvTable, frames: int) -> np.ndarray:
    """The table's probabilities interpolated in time onto mel frames at 25 fps, renormalised."""
    values = np.array([[float(cell) for cell in row] for row in table.rows])
    times = values[:, 1]
    mel_times = np.arange(frames) / 25
    probs = np.stack([np.interp(mel_times, times, values[:, 2 + k]) for k in range(8)], axis=1)
    return probs / probs.sum(axis=1, keepdims=True)


def add_video(media: Path, relative: str, seed: int, seconds: float = 2.0) -> Path:
    """A 25 fps video with a click and its OpenFace CSV beside it."""
    path = media / relative
    pixels = np.full((round(seconds * 25), 32, 48, 3), 90, dtype=np.uint8)
    write_video(path, pixels, fps=25, audio=utterance_audio(seconds, 1.0), sample_rate=SR)
    write_video_csv(path.with_suffix(".csv"), marked_aus(round(seconds * 25), 25, seed), fps=25.0)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Videos of three speakers with OpenFace CSVs; emotion CSVs beside all but one, one lacking a column."""
    media = tmp_path_factory.mktemp("targets") / "media"
    for number, name in enumerate(("a/one.mp4", "a/two.take1.mp4", "b/three.mp4", "c/four.mp4", "c/five.mp4")):
        add_video(media, name, seed=number)
    tables = {
        "a/one": emotion_table(2.0, 1),
        "a/two.take1": emotion_table(2.0, 2, scale=0.8, spaced=True),
        "b/three": emotion_table(2.0, 3, scale=1.3),
        "c/four": emotion_table(2.0, 4).drop_columns("contempt"),
    }
    tables["a/one"].set_cell(30, "fear", "nan")  # a frame without a face: mel frame 25 (1.0 s) is invalid
    for stem, table in tables.items():
        table.write(media / f"{stem}{SUFFIX}", "comma_space" if stem == "a/two.take1" else "comma")
    return media


def run(tree: Path, out: Path, *flags: str) -> Path:
    """Run videos.py on ``tree`` in this process, every speaker in train."""
    assert run_in_process("videos", "--media", tree, "--out", out, "--val_speakers", "0", "--workers", "1", *flags) == 0
    return out


def samples(out: Path) -> dict[str, dict]:
    return {sample["__key__"]: sample for sample in read_split(out, "train")}


def index_of(out: Path) -> dict:
    return json.loads((out / "index.json").read_text())


@pytest.fixture(scope="module")
def default_run(tree, tmp_path_factory) -> Path:
    return run(tree, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def emotions_run(tree, tmp_path_factory) -> Path:
    return run(tree, tmp_path_factory.mktemp("emotions"), "--targets", "emotions", "--labels_csv_suffix", SUFFIX)


def test_default_run_is_the_17_aus_without_a_targets_entry(default_run):
    index = index_of(default_run)
    assert "targets" not in index and len(index["stats"]["au_mean"]) == 17
    assert len(samples(default_run)) == 5 and read_rejected(default_run) == []
    assert all(sample["au.npy"].shape[1] == 17 for sample in samples(default_run).values())


def test_disfa_keeps_its_12_columns_of_the_default_run(tree, default_run, tmp_path):
    out = run(tree, tmp_path / "disfa", "--targets", "disfa")
    spec = PRESETS["disfa"]
    assert index_of(out)["targets"] == spec.to_dict() and len(index_of(out)["stats"]["au_mean"]) == 12
    columns = [AU_COLUMNS.index(column) for column in spec.columns]
    full, subset = samples(default_run), samples(out)
    assert subset.keys() == full.keys()
    for key, sample in subset.items():
        assert sample["au.npy"].shape == (len(sample["mel.npy"]), 12)
        np.testing.assert_array_equal(sample["au.npy"], full[key]["au.npy"][:, columns])
        np.testing.assert_array_equal(sample["valid.npy"], full[key]["valid.npy"])
        np.testing.assert_array_equal(sample["mel.npy"], full[key]["mel.npy"])
    # the targets are part of the run's fingerprint: the default run cannot resume into this folder
    assert run_in_process("videos", "--media", tree, "--out", out, "--val_speakers", "0", "--workers", "1") == 1


def test_emotions_are_distributions_following_the_csv_in_time(tree, emotions_run):
    index = index_of(emotions_run)
    assert index["targets"] == PRESETS["emotions"].to_dict()
    found = samples(emotions_run)
    assert found.keys() == {"a_a_one", "a_a_two-take1", "b_b_three"}
    for key, stem in (("a_a_one", "a/one"), ("a_a_two-take1", "a/two.take1"), ("b_b_three", "b/three")):
        au, valid = found[key]["au.npy"].astype(np.float64), found[key]["valid.npy"]
        assert au.shape == (len(found[key]["mel.npy"]), 8) and len(au) >= 48
        expected = expected_on_frames(read_csv_table(tree / f"{stem}{SUFFIX}"), len(au))
        if key == "a_a_one":
            assert np.flatnonzero(~valid).tolist() == [25] and not au[25].any()
        else:
            assert valid.all()
        np.testing.assert_allclose(au[valid].sum(axis=1), 1.0, atol=5e-3)
        np.testing.assert_allclose(au[valid], expected[valid], atol=2e-3)
        assert np.ptp(au[valid], axis=0).max() > 0.2  # the targets change over time, as the CSV does


def read_csv_table(path: Path) -> CsvTable:
    """A CSV written by ``emotion_table`` read back (cells stripped)."""
    lines = [line.split(",") for line in path.read_text().splitlines()]
    return CsvTable([cell.strip() for cell in lines[0]], [[cell.strip() for cell in row] for row in lines[1:]])


def test_missing_column_or_file_rejects_the_sample_naming_it(tree, emotions_run):
    reasons = {Path(record["item"]).name: record["reason"] for record in read_rejected(emotions_run)}
    assert reasons.keys() == {"four.mp4", "five.mp4"}
    assert (
        reasons["four.mp4"]
        == f"bad targets CSV: {tree / 'c' / 'four.emotions.csv'}: missing target column(s) ['contempt']"
    )
    assert reasons["five.mp4"] == f"no targets CSV at {tree / 'c' / 'five.emotions.csv'}"


def test_columns_with_a_kind_equal_the_preset(tree, emotions_run, tmp_path):
    columns = ",".join(FERPLUS_EMOTIONS)
    flags = ("--targets", columns, "--target_kind", "distribution", "--labels_csv_suffix", SUFFIX)
    out = run(tree, tmp_path / "columns", *flags)
    assert index_of(out)["targets"] == {**PRESETS["emotions"].to_dict(), "name": "custom"}
    preset = samples(emotions_run)
    for key, sample in samples(out).items():
        np.testing.assert_array_equal(sample["au.npy"], preset[key]["au.npy"])


def test_voxceleb2_finds_the_labels_by_suffix(tmp_path):
    folder = tmp_path / "media" / "dev" / "aac" / "id00001" / "vid"
    write_m4a(folder / "00001.m4a", utterance_audio(2.0, 1.0), SR)
    emotion_table(2.0, 5, spaced=True).write(tmp_path / "labels" / "dev" / "id00001" / "vid" / f"00001{SUFFIX}")
    flags = ["--media", tmp_path / "media", "--openface", tmp_path / "labels", "--out", tmp_path / "out"]
    flags += ["--targets", "emotions", "--labels_csv_suffix", SUFFIX, "--workers", "1"]
    assert run_in_process("voxceleb2", *flags) == 0
    (sample,) = read_split(tmp_path / "out", "train")
    assert sample["au.npy"].shape[1] == 8 and sample["valid.npy"].all()
    np.testing.assert_allclose(sample["au.npy"].astype(np.float64).sum(axis=1), 1.0, atol=5e-3)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--targets", "neutral,happiness"], "need --target_low and --target_high"),
        (["--targets", "disfa", "--target_low", "0"], "--target_low: preset 'disfa' fixes its kind and range"),
        (["--targets", "a,b", "--target_kind", "distribution", "--target_high", "5"], "a distribution's range is 0..1"),
        (["--targets", " , "], "give a preset"),
        (["--targets", "AU12_r,AU99_r"], "--targets AU12_r,AU99_r: AU99 is not one of the 17 OpenFace intensity AUs"),
        (["--labels_csv_suffix", ""], "--labels_csv_suffix ''"),
    ],
)
def test_bad_target_flags_are_usage_errors(tmp_path, capsys, flags, fragment):
    (tmp_path / "media" / "a").mkdir(parents=True)
    code = run_in_process("videos", "--media", tmp_path / "media", "--out", tmp_path / "out", *flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


def test_target_spec_from_the_flags():
    spec = recipe_module("talking_heads").target_spec
    assert spec("aus", None, None, None) == PRESETS["aus"] and spec("fera", None, None, None) == PRESETS["fera"]
    subset = spec("AU25_r, AU12", None, None, None)
    assert subset.columns == ("AU12_r", "AU25_r") and subset.is_aus
    custom = spec("jawOpen,mouthClose", None, -1.0, 2.0)
    assert (custom.columns, custom.low, custom.high, custom.kind) == (("jawOpen", "mouthClose"), -1.0, 2.0, "intensity")
    scaled = spec("AU12_r", "intensity", 0.0, 1.0)  # AU columns rescaled by another tool: not OpenFace's 0..5
    assert not scaled.is_aus and (scaled.low, scaled.high) == (0.0, 1.0)
    assert spec("a,b", "distribution", None, None).to_dict() == {
        "name": "custom", "columns": ["a", "b"], "labels": ["a", "b"], "low": 0.0, "high": 1.0, "kind": "distribution"
    }  # fmt: skip
