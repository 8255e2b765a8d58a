"""SpeechAUDataModule and the WebDataset plumbing on real synthetic shards: batches, ranks, workers, errors."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from collections import Counter
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from cause_pl.au import NUM_AUS
from cause_pl.data import (
    SpeechAUDataModule,
    reading,  # module
)
from cause_pl.data.collate import pad_collate
from cause_pl.data.loaders import make_loader
from cause_pl.data.speech import SEQUENCE_FIELDS, decode_utterance
from cause_pl.data.streams import EvalStream, TrainStream, split_shards
from cause_pl.shards.schema import ShardError
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_face_corpus, write_speech_corpus
from tests.recipes.util import read_split

CROP = 64
BATCH = 4
SPEC = SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=2, min_seconds=1.5, max_seconds=3.5)
"""32 train / 8 val / 8 test utterances of 38..88 frames, two per shard: crops of 64 meet short and long ones."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("speech_shards")
    write_speech_corpus(out, SPEC)
    return out


@pytest.fixture(scope="module")
def reference(corpus) -> dict[str, dict[str, dict]]:
    """Every sample of every split, read with plain webdataset: split -> key -> decoded arrays."""
    return {split: {s["__key__"]: s for s in read_split(corpus, split)} for split in ("train", "val", "test")}


def module(root: Path, **kwargs) -> SpeechAUDataModule:
    settings = {"batch_size": BATCH, "crop_frames": CROP, "num_workers": 0, "shuffle_buffer": 8, "eval_batch_size": 3}
    return SpeechAUDataModule(str(root), **{**settings, **kwargs})


def stream_kwargs() -> dict:
    collate = partial(pad_collate, sequence_fields=SEQUENCE_FIELDS)
    return {"decode": partial(decode_utterance, n_mels=80), "collate": collate}


def keys_of(batches) -> list[str]:
    return [key for batch in batches for key in batch["keys"]]


def check_batch_format(batch: dict, frames: int) -> None:
    rows = len(batch["keys"])
    assert batch["mel"].dtype == torch.float32 and batch["mel"].shape == (rows, frames, 80)
    assert batch["au"].dtype == torch.float32 and batch["au"].shape == (rows, frames, NUM_AUS)
    assert batch["mask"].dtype == torch.bool and batch["mask"].shape == (rows, frames)
    assert batch["lengths"].dtype == torch.int64 and batch["lengths"].shape == (rows,)
    assert all(isinstance(key, str) for key in batch["keys"])


def check_row(batch: dict, row: int, ref: dict, start: int) -> None:
    """Row ``row`` holds frames ``start:start + length`` of ``ref``; everything after is zero and masked."""
    length = int(batch["lengths"][row])
    window = slice(start, start + length)
    assert np.array_equal(batch["mel"][row, :length].numpy(), ref["mel.npy"][window].astype(np.float32))
    assert np.array_equal(batch["au"][row, :length].numpy(), ref["au.npy"][window].astype(np.float32))
    assert np.array_equal(batch["mask"][row, :length].numpy(), ref["valid.npy"][window])
    assert not batch["mask"][row, length:].any()
    assert not batch["mel"][row, length:].any() and not batch["au"][row, length:].any()


def crop_start(batch: dict, row: int, ref: dict) -> int:
    """Where in the utterance a training crop starts (the one offset whose frames match)."""
    length = int(batch["lengths"][row])
    mel = batch["mel"][row, :length].numpy()
    full = ref["mel.npy"].astype(np.float32)
    starts = [s for s in range(len(full) - length + 1) if np.array_equal(full[s : s + length], mel)]
    assert len(starts) == 1, f"crop of {batch['keys'][row]} matches offsets {starts}"
    return starts[0]


def test_corpus_has_utterances_shorter_and_longer_than_the_crop(reference):
    lengths = [len(s["mel.npy"]) for s in reference["train"].values()]
    assert min(lengths) < CROP < max(lengths)


def test_properties_come_from_index_json(corpus):
    dm = module(corpus)
    index = json.loads((corpus / "index.json").read_text())
    assert dm.frontend_config.to_dict() == index["frontend"]
    for name, size in (("mel_mean", 80), ("mel_std", 80), ("au_mean", NUM_AUS)):
        value = getattr(dm, name)
        assert value.dtype == torch.float32 and value.shape == (size,)
        assert np.allclose(value.numpy(), index["stats"][name])
    assert dm.index.num_samples("train") == 32


@pytest.mark.parametrize("num_workers", [0, 2])
def test_eval_yields_every_utterance_once_whole_with_padding_masked(corpus, reference, num_workers):
    dm = module(corpus, num_workers=num_workers)
    dm.setup("validate")
    batches = list(dm.val_dataloader())
    assert Counter(keys_of(batches)) == Counter(list(reference["val"]))
    for batch in batches:
        assert 1 <= len(batch["keys"]) <= 3
        check_batch_format(batch, int(batch["lengths"].max()))
        for row, key in enumerate(batch["keys"]):
            ref = reference["val"][key]
            assert batch["lengths"][row] == len(ref["mel.npy"])
            check_row(batch, row, ref, start=0)
    assert any(not batch["mask"].all() for batch in batches), "no batch needed padding: the test proves nothing"


def test_predict_and_test_read_the_test_split(corpus, reference):
    dm = module(corpus)
    dm.setup("predict")
    assert Counter(keys_of(dm.predict_dataloader())) == Counter(list(reference["test"]))
    assert Counter(keys_of(dm.test_dataloader())) == Counter(list(reference["test"]))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_batches_are_full_crops_of_real_utterances(corpus, reference, num_workers):
    dm = module(corpus, num_workers=num_workers)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = list(loader)
    workers = max(num_workers, 1)
    assert len(batches) == len(loader) == dm.train_batches_per_epoch == 32 // (BATCH * workers) * workers
    short = long = 0
    for batch in batches:
        check_batch_format(batch, CROP)
        assert len(batch["keys"]) == BATCH
        for row, key in enumerate(batch["keys"]):
            ref = reference["train"][key]
            assert batch["lengths"][row] == min(len(ref["mel.npy"]), CROP)
            check_row(batch, row, ref, start=crop_start(batch, row, ref))
            short += len(ref["mel.npy"]) < CROP
            long += len(ref["mel.npy"]) > CROP
    assert short and long


def test_epoch_length_rounds_down_to_whole_batches_per_rank_and_worker(corpus):
    for samples, world, workers, expected in ((50, 1, 0, 12), (50, 2, 2, 6), (50, 3, 2, 4), (31, 2, 1, 3)):
        dm = module(corpus, num_workers=workers, train_samples_per_epoch=samples)
        dm.distribute(world - 1, world)
        assert dm.train_batches_per_epoch == expected
    dm = module(corpus, num_workers=2, train_samples_per_epoch=15)
    dm.distribute(0, 2)
    with pytest.raises(ValueError, match=r"less than one batch of 4 to each of 2 rank.*2 worker"):
        dm.train_dataloader()


def test_training_is_reproducible_and_differs_by_rank_worker_and_epoch(corpus):
    def epochs(rank: int, num_workers: int = 0) -> list[list[str]]:
        dm = module(corpus, num_workers=num_workers)
        dm.distribute(rank, 2)
        loader = dm.train_dataloader()
        torch.manual_seed(0)  # what seed_everything does on every rank
        return [keys_of(loader) for _ in range(2)]

    rank0 = epochs(0)
    assert rank0 == epochs(0)
    assert rank0[0] != rank0[1]
    assert epochs(1)[0] != rank0[0]
    with_workers = epochs(0, num_workers=2)
    assert with_workers == epochs(0, num_workers=2) and with_workers[0] != with_workers[1]
    batches = [with_workers[0][start : start + BATCH] for start in range(0, len(with_workers[0]), BATCH)]
    assert batches[0::2] != batches[1::2]  # the loader alternates between the two workers' batches


def test_simulated_ranks_and_workers_share_eval_exactly(corpus, reference):
    seen = []
    for rank in (0, 1):
        dm = module(corpus, num_workers=2)
        dm.distribute(rank, 2)
        seen.append(keys_of(dm.val_dataloader()))
    assert Counter(seen[0] + seen[1]) == Counter(list(reference["val"]))
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])


def test_simulated_ranks_yield_the_same_number_of_full_training_batches(corpus):
    counts = []
    for rank in (0, 1):
        dm = module(corpus, num_workers=2, train_samples_per_epoch=40)
        dm.distribute(rank, 2)
        batches = list(dm.train_dataloader())
        assert all(len(batch["keys"]) == BATCH for batch in batches)
        counts.append(len(batches))
    assert counts == [4, 4]


def test_setup_takes_rank_and_world_size_from_the_trainer(corpus):
    dm = module(corpus)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    dm.setup("fit")
    assert (dm.rank, dm.world_size) == (1, 2)


class _Recorder(pl.LightningModule):
    """Counts training batches and records validation and prediction keys, per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(80))
        self.train_batches = 0
        self.val_keys: list[list[str]] = []

    def training_step(self, batch, batch_idx):
        self.train_batches += 1
        return (batch["mel"][batch["mask"]] * self.weight).mean()

    def on_validation_epoch_start(self) -> None:
        self.val_keys.append([])

    def validation_step(self, batch, batch_idx):
        self.val_keys[-1].extend(batch["keys"])

    def predict_step(self, batch, batch_idx):
        return batch["keys"]

    def test_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_sees_exact_epochs_and_every_val_utterance(corpus, reference):
    dm = module(corpus, num_workers=2)
    model = _Recorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.num_training_batches == dm.train_batches_per_epoch == 8
    assert model.train_batches == 2 * dm.train_batches_per_epoch
    sanity, *epochs = model.val_keys  # the sanity check stops the workers mid-stream
    assert len(sanity) == 3
    assert [Counter(keys) for keys in epochs] == [Counter(list(reference["val"]))] * 2
    predicted = trainer.predict(model, datamodule=dm)
    assert Counter(key for keys in predicted for key in keys) == Counter(list(reference["test"]))


def test_too_few_shards_is_a_clear_error_for_eval_but_fine_for_training(corpus, reference):
    dm = module(corpus, num_workers=3)
    dm.distribute(0, 2)
    val_shards = dm.index.shard_paths("val")
    expected = r"4 shard\(s\) cannot be shared by 2 rank\(s\) x 3 .*--shard_size.*num_workers <= 2"
    with pytest.raises(ShardError, match=expected):
        EvalStream(val_shards, rank=0, world_size=2, num_workers=3, batch_size=2, **stream_kwargs())
    with pytest.raises(ShardError, match=r"1 shard\(s\) cannot be split over 2 ranks"):
        split_shards(val_shards[:1], 0, 2)
    one_shard = TrainStream(
        val_shards[:1],
        rank=1,
        world_size=2,
        num_workers=2,
        batch_size=2,
        samples_per_epoch=8,
        shuffle_buffer=4,
        **stream_kwargs(),
    )
    batches = list(make_loader(one_shard))
    assert len(batches) == 2 and all(len(batch["keys"]) == 2 for batch in batches)
    assert set(keys_of(batches)) <= set(reference["val"])


def test_a_stream_refuses_a_loader_with_other_workers(corpus):
    urls = module(corpus).index.shard_paths("val")
    stream = EvalStream(urls, rank=0, world_size=1, num_workers=2, batch_size=2, **stream_kwargs())
    with pytest.raises(RuntimeError, match="built for num_workers=2 but is read by 1"):
        list(stream)


def _copy_without_split(corpus: Path, out: Path, split: str) -> Path:
    out.mkdir()
    index = json.loads((corpus / "index.json").read_text())
    del index["splits"][split]
    (out / "index.json").write_text(json.dumps(index))
    for name in (s["name"] for shards in index["splits"].values() for s in shards["shards"]):
        (out / name).symlink_to(corpus / name)
    return out


def test_missing_split_names_the_available_ones(corpus, tmp_path):
    dm = module(_copy_without_split(corpus, tmp_path / "no_test", "test"))
    dm.setup("fit")
    for stage in ("test", "predict"):
        with pytest.raises(ShardError, match=r"no split 'test'; available: \['train', 'val'\]"):
            dm.setup(stage)


def test_wrong_kind_is_refused(tmp_path):
    faces = tmp_path / "faces"
    write_face_corpus(faces, SyntheticCorpusSpec(faces=6, identities=3, face_size=32, shard_size=2))
    with pytest.raises(ShardError, match="holds 'faces' shards; SpeechAUDataModule needs 'speech_au'"):
        module(faces).setup("fit")


def test_frontend_must_match_the_shards(corpus):
    frontend = json.loads((corpus / "index.json").read_text())["frontend"]
    module(corpus, frontend=dict(frontend)).setup("fit")
    dm = module(corpus, frontend={**frontend, "n_mels": 64, "f_max": 7600.0})
    with pytest.raises(ShardError, match="frontend mismatch") as error:
        dm.setup("fit")
    message = str(error.value)
    assert "'n_mels': (64, 80)" in message and "'f_max': (7600.0, 8000.0)" in message
    assert "'n_mels': 64" in message and "'n_mels': 80" in message
    with pytest.raises(ValueError, match=r"frontend=.*not a valid MelConfig.*unknown MelConfig keys"):
        module(corpus, frontend={"hop": 3})


@pytest.fixture
def damaged(corpus, tmp_path) -> tuple[Path, str, set[str]]:
    """A copy of the corpus whose first val shard is cut inside its second sample: (root, shard, lost keys)."""
    root = tmp_path / "damaged"
    shutil.copytree(corpus, root)
    shard = root / json.loads((root / "index.json").read_text())["splits"]["val"]["shards"][0]["name"]
    with tarfile.open(shard) as archive:
        members = archive.getmembers()
    keys = [m.name.split(".")[0] for m in members]
    second = keys.index(keys[-1])  # first member of the last sample
    cut = members[second + 2].offset_data + members[second + 2].size // 2
    with open(shard, "r+b") as stream:
        stream.truncate(cut)
    return root, str(shard), {keys[-1]}


def test_truncated_shard_is_skipped_and_counted(damaged, reference, caplog):
    root, shard, lost = damaged
    loader = module(root).val_dataloader()
    with caplog.at_level(logging.WARNING, logger=reading.__name__):
        keys = keys_of(loader)
    assert Counter(keys) == Counter(list(set(reference["val"]) - lost))
    assert loader.dataset.errors.count == 1 and loader.dataset.errors.bad_shards == {shard}
    assert any(shard in record.getMessage() for record in caplog.records)


def test_truncated_shard_raises_in_strict_mode(damaged):
    root, shard, _ = damaged
    with pytest.raises(ShardError, match=f"{shard}: unreadable: ReadError"):
        keys_of(module(root, strict=True).val_dataloader())


def test_training_gives_up_when_every_shard_is_broken(corpus, tmp_path, monkeypatch):
    root = tmp_path / "broken"
    shutil.copytree(corpus, root)
    for shard in root.glob("speech_au-train-*.tar"):
        shard.write_bytes(shard.read_bytes()[:100])
    monkeypatch.setattr(reading, "MAX_CONSECUTIVE_ERRORS", 5)
    with pytest.raises(ShardError, match="5 read errors in a row without one good sample"):
        next(iter(module(root).train_dataloader()))


def test_eval_workers_are_their_own_setting_and_lowered_to_the_shards_with_a_warning(corpus, reference):
    dm = module(corpus, num_workers=0, eval_num_workers=2)
    assert dm.train_dataloader().num_workers == 0 and dm.val_dataloader().num_workers == 2
    assert module(corpus, num_workers=3).eval_num_workers == 3  # default: the training count
    crowded = module(corpus, num_workers=8)  # the CNN config's 8 workers, 2 ranks, 4 val shards
    crowded.distribute(1, 2)
    with pytest.warns(UserWarning, match=r"4 shard\(s\) over 2 rank\(s\) allow at most 2 .*eval_num_workers=8"):
        loader = crowded.val_dataloader()
    assert loader.num_workers == 2
    assert keys_of(loader)  # reads, rather than stopping at the first validation
    with pytest.raises(ValueError, match="eval_num_workers must be an integer >= 0"):
        module(corpus, eval_num_workers=-1)


def _truncate_second_sample(shard: Path) -> None:
    with tarfile.open(shard) as archive:
        members = archive.getmembers()
    keys = [m.name.split(".")[0] for m in members]
    second = keys.index(keys[-1])
    with open(shard, "r+b") as stream:
        stream.truncate(members[second + 2].offset_data + members[second + 2].size // 2)


def test_skipped_samples_are_logged_per_epoch_and_summed_over_workers(damaged, caplog):
    root, _, _ = damaged
    _truncate_second_sample(
        root / json.loads((root / "index.json").read_text())["splits"]["train"]["shards"][0]["name"]
    )
    dm = module(root, num_workers=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with caplog.at_level(logging.WARNING, logger="cause_pl.data.monitor"):
        trainer.fit(_Recorder(), datamodule=dm)
    monitors = [c for c in trainer.callbacks if type(c).__name__ == "SkippedSamplesMonitor"]
    assert len(monitors) == 1  # added by the data module, once
    metrics = trainer.callback_metrics
    assert metrics["data/val_skipped_samples"].item() == 1  # the damaged val shard, read once per epoch
    assert metrics["data/skipped_samples"].item() >= 1  # the damaged train shard, drawn with replacement
    assert monitors[0].totals["val"] == 2 and monitors[0].totals["train"] >= 2
    summaries = [r.getMessage() for r in caplog.records if r.name == "cause_pl.data.monitor"]
    assert len(summaries) == 1 and "skipped" in summaries[0] and "val 2" in summaries[0]
    trainer.test(_Recorder(), datamodule=dm)
    assert trainer.callback_metrics["data/test_skipped_samples"].item() == 0


@pytest.mark.parametrize("field", ["mel.npy", "au.npy"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_sample_holding_nan_or_inf_is_refused_naming_it(field, value):
    from cause_pl.shards.schema import speech_sample

    mel, au, valid = np.zeros((4, 8)), np.ones((4, NUM_AUS)), np.ones(4, bool)
    (mel if field == "mel.npy" else au)[2, 1] = value
    sample = {**speech_sample("utt1", mel, au, valid, {}), "__url__": "shard-7.tar"}
    with pytest.raises(ShardError, match=r"shard-7\.tar: sample utt1: mel or au holds NaN or infinite values"):
        decode_utterance(sample, n_mels=8)
