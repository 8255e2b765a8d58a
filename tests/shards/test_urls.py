"""Shards read through ``shard_url`` templates (``pipe:`` commands, other paths) and the shard byte reader.

The manifest (index.json) stays in ``root``; the shards are copied elsewhere and read with real
``pipe:cat`` commands, which must give exactly the samples a plain read gives. Failing commands are
read errors (skip-and-count, or raise in strict mode, naming the command).
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from braceexpand import braceexpand

from cause_pl.data import (
    FaceAUDataModule,
    SpeechAUDataModule,
    reading,  # module
)
from cause_pl.data.reading import ReadErrors, read_shard
from cause_pl.shards.schema import ShardError, decode_npy, encode_npy
from cause_pl.shards.tar_reader import tar_samples
from cause_pl.shards.urls import check_url_template, shard_url
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_face_corpus, write_speech_corpus

SPEC = SyntheticCorpusSpec(speakers=3, utterances_per_speaker=4, shard_size=2, min_seconds=1.5, max_seconds=3.0)
"""4 train / 4 val / 4 test utterances, two per shard."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_speech_corpus(tmp_path_factory.mktemp("speech"), SPEC).root


@pytest.fixture(scope="module")
def moved(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """(a root holding only index.json, the directory the shards were moved to)."""
    root, elsewhere = tmp_path_factory.mktemp("manifest"), tmp_path_factory.mktemp("bucket")
    shutil.copy(corpus / "index.json", root)
    for shard in corpus.glob("*.tar"):
        shutil.copy(shard, elsewhere)
    return root, elsewhere


def module(root: Path, **kwargs) -> SpeechAUDataModule:
    settings = {"batch_size": 2, "crop_frames": 32, "num_workers": 0, "shuffle_buffer": 4, "train_samples_per_epoch": 8}
    return SpeechAUDataModule(str(root), **{**settings, **kwargs})


def assert_same_batches(batches: list[dict], expected: list[dict]) -> None:
    assert len(batches) == len(expected) > 0
    for batch, reference in zip(batches, expected, strict=True):
        assert batch["keys"] == reference["keys"]
        for name in ("mel", "au", "mask", "lengths"):
            assert batch[name].dtype == reference[name].dtype
            assert torch.equal(batch[name], reference[name]), name


def train_batches(dm: SpeechAUDataModule) -> list[dict]:
    torch.manual_seed(0)  # the epoch seed, as seed_everything gives it
    return list(dm.train_dataloader())


@pytest.mark.parametrize("template", ["pipe:cat {dir}/{{name}}", "{dir}/{{name}}"])
def test_template_reads_exactly_the_samples_of_a_plain_read(corpus, moved, template):
    root, elsewhere = moved
    url = template.format(dir=elsewhere)
    plain, remote = module(corpus), module(root, shard_url=url)
    assert remote.shard_urls("val") == [url.replace("{name}", Path(p).name) for p in plain.index.shard_paths("val")]
    assert_same_batches(list(remote.val_dataloader()), list(plain.val_dataloader()))
    assert_same_batches(train_batches(remote), train_batches(plain))


def test_pipe_works_inside_dataloader_workers_and_for_faces(corpus, moved, tmp_path):
    root, elsewhere = moved
    dm = module(root, shard_url=f"pipe:cat {elsewhere}/{{name}}", num_workers=2)
    assert sorted(k for b in dm.val_dataloader() for k in b["keys"]) == sorted(
        k for b in module(corpus).val_dataloader() for k in b["keys"]
    )
    faces = write_face_corpus(tmp_path / "faces", SyntheticCorpusSpec(faces=9, identities=3, face_size=32)).root
    plain = list(FaceAUDataModule(str(faces), batch_size=2, num_workers=0).val_dataloader())
    piped = list(
        FaceAUDataModule(
            str(faces), batch_size=2, num_workers=0, shard_url=f"pipe:cat {faces}/{{name}}"
        ).val_dataloader()
    )
    assert [b["keys"] for b in piped] == [b["keys"] for b in plain]
    assert all(
        torch.equal(p["image"], q["image"]) and torch.equal(p["au"], q["au"]) for p, q in zip(piped, plain, strict=True)
    )


def test_a_failing_command_is_skipped_and_counted(corpus, moved, tmp_path, caplog):
    root, elsewhere = moved
    partial = tmp_path / "partial"
    shutil.copytree(elsewhere, partial)
    missing = module(root).index.shard_names("val")[0]
    (partial / missing).unlink()
    loader = module(root, shard_url=f"pipe:cat {partial}/{{name}}").val_dataloader()
    with caplog.at_level(logging.WARNING, logger=reading.__name__):
        keys = [key for batch in loader for key in batch["keys"]]
    lost = {sample["__key__"] for sample in read_shard(str(corpus / missing), ReadErrors(strict=True))}
    expected = {key for batch in module(corpus).val_dataloader() for key in batch["keys"]} - lost
    assert sorted(keys) == sorted(expected) and lost
    command = f"pipe:cat {partial}/{missing}"
    assert loader.dataset.errors.count == 1 and loader.dataset.errors.bad_shards == {command}
    assert any(command in record.getMessage() and "No such file" in record.getMessage() for record in caplog.records)


def test_a_failing_command_raises_in_strict_mode_naming_the_command(moved):
    root, _ = moved
    dm = module(root, shard_url="pipe:cat /nonexistent/{name}", strict=True)
    first = dm.index.shard_names("val")[0]
    with pytest.raises(
        ShardError, match=rf"cat /nonexistent/{first}: unreadable: CommandFailedError: .*status 1.*No such file"
    ):
        next(iter(dm.val_dataloader()))
    with pytest.raises(ShardError, match=r"could not start.*no-such-program"):
        next(iter(module(root, shard_url="pipe:no-such-program {name}", strict=True).val_dataloader()))


def test_lenient_training_over_only_failing_commands_gives_up(moved, monkeypatch):
    monkeypatch.setattr(reading, "MAX_CONSECUTIVE_ERRORS", 3)
    dm = module(moved[0], shard_url="pipe:cat /nonexistent/{name}")
    with pytest.raises(ShardError, match=r"3 read errors in a row.*cat /nonexistent/.*CommandFailedError"):
        next(iter(dm.train_dataloader()))


def test_the_command_failure_not_the_tar_error_is_reported_when_output_is_cut(corpus):
    shard = str(corpus / module(corpus).index.shard_names("train")[0])
    cut = f"pipe:sh -c 'head -c 3000 \"$0\"; echo lost connection >&2; exit 2' {shard}"
    with pytest.raises(ShardError, match=r"CommandFailedError: .*status 2: lost connection"):
        list(read_shard(cut, ReadErrors(strict=True)))
    errors = ReadErrors()
    assert list(read_shard(f"pipe:head -c 3000 {shard}", errors)) == [] and errors.count == 1  # exit 0: tar error


def test_stopping_early_kills_the_command_without_an_error(corpus):
    shard = str(corpus / module(corpus).index.shard_names("train")[0])
    errors = ReadErrors(strict=True)
    samples = read_shard(f"pipe:sh -c 'cat \"$0\"; exec sleep 60' {shard}", errors)
    started = time.monotonic()
    next(samples)
    samples.close()
    assert time.monotonic() - started < 10 and errors.count == 0


@pytest.mark.parametrize("stall", ["exec sleep 30", 'head -c 3000 "$0"; exec sleep 30', 'cat "$0"; exec sleep 30'])
def test_a_stalled_command_is_killed_after_the_timeout_and_counted(corpus, stall):
    shard = str(corpus / module(corpus).index.shard_names("train")[0])
    command = f"pipe:sh -c '{stall}' {shard}"
    started = time.monotonic()
    with pytest.raises(ShardError, match=r"CommandTimeoutError: .*sent no output for 0.5 s and was killed"):
        list(read_shard(command, ReadErrors(strict=True), pipe_timeout=0.5))
    errors = ReadErrors()
    samples = list(read_shard(command, errors, pipe_timeout=0.5))
    assert errors.count == 1 and time.monotonic() - started < 15
    assert len(samples) == (2 if stall.startswith("cat") else 0)  # samples read before the stall are kept


def test_the_pipe_timeout_reaches_the_readers_and_is_checked(moved):
    root, _ = moved
    dm = module(root, shard_url="pipe:sh -c 'exec sleep 30' {name}", pipe_timeout=0.5, strict=True)
    started = time.monotonic()
    with pytest.raises(ShardError, match="CommandTimeoutError"):
        next(iter(dm.val_dataloader()))
    assert time.monotonic() - started < 15
    assert module(root).pipe_timeout == 600.0 and module(root, pipe_timeout=None).pipe_timeout is None
    with pytest.raises(ValueError, match="pipe_timeout must be a positive number"):
        module(root, pipe_timeout=0)


def test_templates_are_checked_with_advice():
    with pytest.raises(ValueError, match=r"no \{name\} placeholder"):
        SpeechAUDataModule("unused", shard_url="/scratch/vox/shard.tar")
    with pytest.raises(ValueError, match=r"no \{name\} placeholder.*instead of a brace range"):
        check_url_template("pipe:aws s3 cp s3://bucket/vox/speech_au-train-{000000..000009}.tar -")
    with pytest.raises(ValueError, match=r"only plain paths and 'pipe:' commands.*pipe:aws s3 cp"):
        FaceAUDataModule("unused", shard_url="s3://bucket/faces/{name}")
    with pytest.raises(ValueError, match="cannot be split into arguments"):
        check_url_template("pipe:cat '/mnt/{name}")


def test_name_stands_for_what_webdataset_users_write_as_a_brace_range(corpus):
    """``.../{name}`` lists exactly the shards webdataset's brace expansion of the split's range lists."""
    dm = module(corpus, shard_url="pipe:aws s3 cp s3://bucket/vox/{name} -")
    count = len(dm.index.shard_names("train"))
    pattern = f"pipe:aws s3 cp s3://bucket/vox/speech_au-train-{{000000..{count - 1:06d}}}.tar -"
    assert dm.shard_urls("train") == list(braceexpand(pattern)) and count > 1
    assert shard_url(None, "/data/vox", "a.tar") == "/data/vox/a.tar"
    assert shard_url("pipe:cat /m/{name}", "/data", "odd name.tar") == "pipe:cat /m/'odd name.tar'"
    assert shard_url('pipe:curl -H {"a": 1} {name}', "/data", "b.tar") == 'pipe:curl -H {"a": 1} b.tar'


# The shard byte reader (tar headers and .npy headers parsed without tarfile / np.load).


def tar_bytes(files: dict[str, bytes], **options) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", **options) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0.5  # a float time: PAX headers
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


FILES = {
    "a/sample1.mel.npy": b"m1",
    "a/sample1.JSON": b"{}",
    "a/sample2.mel.npy": b"m2" * 700,
    "d" * 90 + "/" + "e" * 60 + ".txt": b"long path",  # ustar prefix, or PAX/GNU long name
    "__meta__": b"skipped",
    "nodot": b"skipped",
    "üñí/cödé.bin": b"\x00\x01",
}


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_reader_groups_samples_like_webdataset(tar_format, tmp_path):
    files = FILES if tar_format != tarfile.USTAR_FORMAT else {k: v for k, v in FILES.items() if k.isascii()}
    data = tar_bytes(files, format=tar_format)
    (tmp_path / "x.tar").write_bytes(data)
    expected = [
        {k: v for k, v in s.items() if k != "__local_path__"}
        for s in wds.WebDataset(str(tmp_path / "x.tar"), shardshuffle=False, empty_check=False)
    ]
    for sample in expected:
        sample["__url__"] = "x"
    assert list(tar_samples(io.BytesIO(data), "x")) == expected
    assert {"json", "mel.npy"} <= set(expected[0]) and len(expected) == len(files) - 3


def test_tar_reader_rejects_damage_that_tarfile_would_hide():
    data = bytearray(tar_bytes(FILES))
    second_header = 512 * 4  # after the first file's PAX header, PAX data, header and data
    data[second_header + 10] ^= 0xFF
    with pytest.raises(tarfile.ReadError, match="bad checksum"):
        list(tar_samples(io.BytesIO(bytes(data)), "x"))
    with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
        list(tar_samples(io.BytesIO(tar_bytes(FILES)[:2000]), "x"))
    with pytest.raises(ShardError, match="a second 'txt' file for sample a/s"):
        list(tar_samples(io.BytesIO(tar_bytes({"a/s.txt": b"1", "a/s.TXT": b"2"})), "x"))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float16).reshape(3, 4),
        np.ones((0, 80), np.float16),
        np.array([True, False]),
        np.float32(2.5).reshape(()),
        np.arange(6, dtype=">i4"),
        np.asfortranarray(np.ones((3, 2))),
        np.zeros(2, dtype=[("x", "<f4")]),
    ],
)
def test_npy_decoding_equals_numpy(array):
    data = io.BytesIO()
    np.save(data, array)  # fortran order and structured dtypes take np.load's path
    decoded = decode_npy(data.getvalue())
    assert decoded.dtype == array.dtype and decoded.shape == array.shape and np.array_equal(decoded, array)
    assert not decoded.flags.writeable


def test_npy_decoding_refuses_short_data_and_pickles():
    with pytest.raises(ValueError, match="smaller than requested"):
        decode_npy(encode_npy(np.ones(100, np.float32))[:-4])
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        decode_npy(pickled.getvalue())
