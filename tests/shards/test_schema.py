"""Shard schema, atomic writing, the resumable parallel writer and index.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import webdataset as wds

from cause_pl.au import NUM_AUS
from cause_pl.shards import writer as writer_module
from cause_pl.shards.index import DatasetIndex, FeatureStats
from cause_pl.shards.schema import ShardError, decode_npy, encode_npy, speech_sample, write_shard
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset


def toy_item(item: int) -> Processed | Rejected:
    """Item n: n + 5 frames whose mel and AU values are known functions of n; multiples of 7 rejected."""
    if item % 7 == 3:
        return Rejected(f"item{item}", "too short: toy rule")
    rng = np.random.default_rng(item)
    frames = item + 5
    mel = rng.normal(item % 3, 1.0, size=(frames, 4)).astype(np.float32)
    au = np.full((frames, NUM_AUS), item % 5, dtype=np.float32)
    valid = np.arange(frames) % 4 != 0
    sample = speech_sample(f"item{item:04d}", mel, au, valid, {"speaker": f"s{item % 2}"})
    return Processed(sample, au, valid, mel)


def read_samples(paths: list[str]) -> list[dict]:
    return list(wds.WebDataset(paths, shardshuffle=False).decode())


def test_npy_roundtrip_and_no_pickle():
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    assert np.array_equal(decode_npy(encode_npy(array)), array)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        encode_npy(np.array([{"a": 1}], dtype=object))


def test_speech_sample_rejects_bad_shapes_and_keys():
    mel, au, valid = np.zeros((5, 80)), np.zeros((5, NUM_AUS)), np.ones(5, bool)
    with pytest.raises(ShardError, match="shapes disagree"):
        speech_sample("k", mel, au[:4], valid, {})
    with pytest.raises(ShardError, match="invalid sample key"):
        speech_sample("a.b", mel, au, valid, {})


def test_write_shard_is_deterministic_and_readable(tmp_path):
    samples = [toy_item(n).sample for n in (1, 2, 4)]
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    assert write_shard(first, samples) == 3
    write_shard(second, samples)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    decoded = read_samples([str(first)])
    assert [s["__key__"] for s in decoded] == ["item0001", "item0002", "item0004"]
    assert decoded[0]["mel.npy"].dtype == np.float16 and decoded[0]["mel.npy"].shape == (6, 4)
    assert decoded[2]["valid.npy"].dtype == bool
    assert decoded[1]["json"] == {"speaker": "s0", "frames": 7}


def test_feature_stats_merge_equals_adding_everything():
    whole, left, right = FeatureStats(), FeatureStats(), FeatureStats()
    for n in range(6):
        result = toy_item(n * 2)
        if isinstance(result, Processed):
            whole.add(result.au, result.valid, result.mel)
            (left if n < 3 else right).add(result.au, result.valid, result.mel)
    merged = left.merge(right).summary()
    expected = whole.summary()
    for name in ("au_mean", "mel_mean", "mel_std"):
        assert np.allclose(merged[name], expected[name])
    assert FeatureStats.from_dict(whole.to_dict()).summary() == expected


def write_toy(out, workers=1, items=None, settings=None):
    items = items or {"train": list(range(20)), "val": list(range(20, 26))}
    return write_dataset(
        out, "speech_au", plan_jobs("speech_au", items, 4), toy_item, workers=workers, settings=settings
    )


def test_write_dataset_index_rejections_and_statistics(tmp_path):
    index = write_toy(tmp_path)
    expected_train = [n for n in range(20) if n % 7 != 3]
    assert index.num_samples("train") == len(expected_train)
    assert index.num_samples("val") == len([n for n in range(20, 26) if n % 7 != 3])
    assert len(index.shard_paths("train")) == 5
    keys = [s["__key__"] for s in read_samples(index.shard_paths("train"))]
    assert keys == [f"item{n:04d}" for n in expected_train]

    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert rejected == [
        {"split": "train", "item": "item3", "reason": "too short: toy rule"},
        {"split": "train", "item": "item10", "reason": "too short: toy rule"},
        {"split": "train", "item": "item17", "reason": "too short: toy rule"},
        {"split": "val", "item": "item24", "reason": "too short: toy rule"},
    ]
    # statistics cover the train split only, AU means over valid frames only
    stats = FeatureStats()
    for n in expected_train:
        result = toy_item(n)
        stats.add(result.au, result.valid, result.mel)
    assert np.allclose(index.array("au_mean"), stats.summary()["au_mean"])
    assert np.allclose(index.array("mel_std"), stats.summary()["mel_std"])
    with pytest.raises(ShardError, match="no split 'test'"):
        index.num_samples("test")


def test_resume_rewrites_only_missing_shards_identically(tmp_path):
    whole = tmp_path / "whole"
    write_toy(whole)
    resumed = tmp_path / "resumed"
    write_toy(resumed)
    # simulate a kill: one shard never finished, another has its tar but no sidecar, a stray partial
    (resumed / "speech_au-train-000002.tar").unlink()
    (resumed / ".parts" / "speech_au-train-000002.tar.json").unlink()
    (resumed / ".parts" / "speech_au-train-000004.tar.json").unlink()
    (resumed / "speech_au-val-000000.tar.partial").write_bytes(b"junk")
    (resumed / "index.json").unlink()
    write_toy(resumed)
    for path in whole.glob("*.tar"):
        assert (resumed / path.name).read_bytes() == path.read_bytes()
    assert (resumed / "index.json").read_text() == (whole / "index.json").read_text()
    assert (resumed / "rejected.jsonl").read_text() == (whole / "rejected.jsonl").read_text()
    assert not list(resumed.glob("*.partial"))


def test_a_failed_finish_leaves_the_previous_rejected_list_whole(tmp_path, monkeypatch):
    write_toy(tmp_path)
    before = (tmp_path / "rejected.jsonl").read_bytes()
    calls = {"n": 0}
    dumps = json.dumps

    def failing_dumps(record, **kwargs):  # the disk fills after the second rejection is written
        calls["n"] += 1
        if calls["n"] > 2 and "reason" in record:
            raise OSError(28, "No space left on device")
        return dumps(record, **kwargs)

    monkeypatch.setattr(writer_module.json, "dumps", failing_dumps)
    with pytest.raises(OSError, match="No space left"):
        write_toy(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "rejected.jsonl").read_bytes() == before
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")]


def test_parallel_workers_give_identical_shards(tmp_path):
    write_toy(tmp_path / "one")
    write_toy(tmp_path / "two", workers=2)
    for path in (tmp_path / "one").glob("*.tar"):
        assert (tmp_path / "two" / path.name).read_bytes() == path.read_bytes()


def test_refuses_to_mix_runs(tmp_path):
    write_toy(tmp_path, settings={"size": 1})
    with pytest.raises(ShardError, match="different run"):
        write_toy(tmp_path, settings={"size": 2})


def test_index_load_errors(tmp_path):
    with pytest.raises(ShardError, match=r"no index\.json"):
        DatasetIndex.load(tmp_path)
    (tmp_path / "index.json").write_text('{"schema_version": 99}')
    with pytest.raises(ShardError, match="schema version"):
        DatasetIndex.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ("[1, 2]", ShardError, "a JSON list, expected an object with 'splits'"),
        ('{"schema_version": 1, "kind": "faces"}', ShardError, "'splits' is none"),
        ('{"schema_version": 1, "kind": "faces", "splits": []}', ShardError, "'splits' is a JSON list"),
        (
            '{"schema_version": 1, "kind": "faces", "splits": {"test": {"shards": [{"name": "a.tar"}]}}}',
            ShardError,
            "split 'test': 'shards' must be a list of",
        ),
        ('{"schema_version": 1, "kind": "faces", "splits": {"val": {}}}', ShardError, "split 'val'"),
    ],
)
def test_index_load_refuses_malformed_splits(tmp_path, content, error, match):
    (tmp_path / "index.json").write_text(content)
    with pytest.raises(error, match=match):
        DatasetIndex.load(tmp_path)


def test_index_load_of_a_missing_folder_or_a_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such shard folder"):
        DatasetIndex.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a shard folder"):
        DatasetIndex.load(tmp_path / "file")
