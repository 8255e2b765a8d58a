"""FaceAUDataModule on real synthetic face shards: batch contract, targets, flips, ranks, errors, a DDP fit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cause_pl.au import NUM_AUS
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.shards.schema import ShardError
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_face_corpus
from tests.recipes.util import ROOT, read_split

BATCH = 4
SIZE = 32
SPEC = SyntheticCorpusSpec(faces=60, identities=6, face_size=SIZE, face_shard_size=4)
"""40 train faces in 10 shards, 10 val and 10 test faces in 3 shards each (4, 4, 2)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("face_shards")
    write_face_corpus(out, SPEC)
    return out


@pytest.fixture(scope="module")
def reference(corpus) -> dict[str, dict[str, dict]]:
    """Every sample of every split read with plain webdataset: split -> key -> {jpg: uint8 HWC, au.npy}."""
    return {split: {s["__key__"]: s for s in read_split(corpus, split)} for split in ("train", "val", "test")}


def module(root: Path, **kwargs) -> FaceAUDataModule:
    settings = {"batch_size": BATCH, "num_workers": 0, "shuffle_buffer": 8, "eval_batch_size": 3}
    return FaceAUDataModule(str(root), **{**settings, **kwargs})


def pixels(ref: dict) -> np.ndarray:
    """The reference image as the module should give it: (3, H, W) in [-1, 1]."""
    return ref["jpg"].astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0


def check_batch_format(batch: dict, size: int = SIZE) -> None:
    rows = len(batch["keys"])
    assert set(batch) == {"image", "au", "target_au", "keys"}
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (rows, 3, size, size)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    for name in ("au", "target_au"):
        assert batch[name].dtype == torch.float32 and batch[name].shape == (rows, NUM_AUS)
    assert all(isinstance(key, str) for key in batch["keys"])


def test_eval_batches_hold_unflipped_images_their_aus_and_fixed_targets(corpus, reference):
    dm = module(corpus)
    dm.setup("validate")
    first, second = list(dm.val_dataloader()), list(dm.val_dataloader())
    assert Counter(k for b in first for k in b["keys"]) == Counter(list(reference["val"]))
    for batch, again in zip(first, second, strict=True):
        check_batch_format(batch)
        assert torch.equal(batch["target_au"], again["target_au"]), "eval targets change between passes"
        for row, key in enumerate(batch["keys"]):
            ref = reference["val"][key]
            assert np.array_equal(batch["image"][row].numpy(), pixels(ref))
            assert np.array_equal(batch["au"][row].numpy(), ref["au.npy"] / 5)
        assert torch.equal(batch["target_au"], batch["au"].roll(1, dims=0))


def test_test_and_predict_read_the_test_split(corpus, reference):
    dm = module(corpus)
    dm.setup("test")
    assert Counter(k for b in dm.test_dataloader() for k in b["keys"]) == Counter(list(reference["test"]))
    assert Counter(k for b in dm.predict_dataloader() for k in b["keys"]) == Counter(list(reference["test"]))


def test_training_batches_flip_some_images_and_target_other_images_aus(corpus, reference):
    dm = module(corpus, shuffle_buffer=16, train_samples_per_epoch=400)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == dm.train_batches_per_epoch == 100
    train_aus = np.stack([ref["au.npy"] for ref in reference["train"].values()]) / 5
    low, high = train_aus.min() - 0.1, train_aus.max() + 0.1
    flipped = kept = 0
    noises = []
    distinct_batches = 0
    for batch in batches:
        check_batch_format(batch)
        assert len(batch["keys"]) == BATCH
        gaps = (batch["au"][:, None] - batch["au"][None]).abs().amax(dim=2) + 9 * torch.eye(BATCH)
        if gaps.min() <= 0.2:
            continue  # a repeated image (or one with near-equal AUs) makes the donor ambiguous
        distinct_batches += 1
        donors = []
        for row, key in enumerate(batch["keys"]):
            ref = reference["train"][key]
            assert np.array_equal(batch["au"][row].numpy(), ref["au.npy"] / 5)
            image, stored = batch["image"][row].numpy(), pixels(ref)
            flipped += np.array_equal(image, stored[:, :, ::-1])
            kept += np.array_equal(image, stored)
            offsets = (batch["target_au"][row] - batch["au"]).abs().amax(dim=1)
            within = [j for j in range(BATCH) if offsets[j] <= 0.1 + 1e-6]
            assert len(within) == 1, f"target of {key} is not one batch image's AUs +- 0.1: {offsets}"
            donors.append(within[0])
            noises.append((batch["target_au"][row] - batch["au"][within[0]]).numpy())
        assert sorted(donors) == list(range(BATCH)) and all(d != row for row, d in enumerate(donors))
        assert low <= batch["target_au"].min() and batch["target_au"].max() <= high
    assert distinct_batches > len(batches) // 4
    assert flipped + kept == distinct_batches * BATCH
    assert 0.3 < flipped / (flipped + kept) < 0.7
    noise = np.concatenate(noises)
    assert np.abs(noise).max() <= 0.1 + 1e-6 and noise.std() > 0.04, "target noise is not U(-0.1, 0.1)"


def test_training_without_flip_or_noise_gives_stored_images_and_exact_donor_aus(corpus, reference):
    dm = module(corpus, flip=False, target_noise=0.0)
    dm.setup("fit")
    for batch in dm.train_dataloader():
        for row, key in enumerate(batch["keys"]):
            assert np.array_equal(batch["image"][row].numpy(), pixels(reference["train"][key]))
            donors = [j for j in range(BATCH) if torch.equal(batch["target_au"][row], batch["au"][j])]
            assert any(j != row for j in donors), f"{key} did not get the AUs of another batch position"


def test_image_size_resizes(corpus):
    dm = module(corpus, image_size=16)
    dm.setup("fit")
    check_batch_format(next(iter(dm.train_dataloader())), size=16)
    check_batch_format(next(iter(dm.val_dataloader())), size=16)


def test_ranks_see_each_eval_key_once_and_equal_training_epochs(corpus, reference):
    seen: list[str] = []
    lengths = []
    for rank in (0, 1):
        dm = module(corpus)
        dm.distribute(rank, 2)
        seen += [k for b in dm.val_dataloader() for k in b["keys"]]
        lengths.append(len(list(dm.train_dataloader())))
    assert Counter(seen) == Counter(list(reference["val"]))
    assert lengths == [40 // (2 * BATCH)] * 2


def test_errors_name_the_problem(corpus, tmp_path):
    index = json.loads((corpus / "index.json").read_text())
    speech = tmp_path / "speech"
    speech.mkdir()
    (speech / "index.json").write_text(json.dumps({**index, "kind": "speech_au"}))
    with pytest.raises(ShardError, match="needs 'faces' shards"):
        module(speech).setup("fit")

    no_val = tmp_path / "no_val"
    shutil.copytree(corpus, no_val)
    (no_val / "index.json").write_text(json.dumps({**index, "splits": {"train": index["splits"]["train"]}}))
    with pytest.raises(ShardError, match="no split 'val'"):
        module(no_val).setup("validate")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        module(corpus, batch_size=1)
    with pytest.raises(ValueError, match="target_noise"):
        module(corpus, target_noise=-0.1)


@pytest.mark.slow
def test_cli_fits_ganimation_with_two_ddp_processes(corpus, tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "cause_pl.cli.main", "fit",
        "--config", "experiments/ganimation/celeba128.yaml", "--config", "experiments/ganimation/synthetic.yaml",
        f"--data.init_args.root={corpus}", "--data.init_args.image_size=32", "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=0", "--data.init_args.train_samples_per_epoch=16",
        "--data.init_args.eval_batch_size=4",
        "--model.init_args.image_size=32", "--model.init_args.d_layers=4", "--model.init_args.critic_steps=2",
        "--model.init_args.g_base_channels=8", "--model.init_args.g_res_blocks=1",
        "--model.init_args.d_base_channels=8", "--model.init_args.d_max_channels=64",
        "--trainer.max_steps=6", "--trainer.max_epochs=-1", "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={out}", f"--trainer.logger.init_args.save_dir={out}",
        # plain "ddp" fails: the critic step leaves the generator unused (see GANimation's docstring)
        "--trainer.strategy=ddp_find_unused_parameters_true", "--trainer.devices=2", "--trainer.accelerator=cpu",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    checkpoint = next(out.rglob("last.ckpt"))
    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"] == 6
    metrics = (next(out.rglob("metrics.csv"))).read_text()
    assert "val/cycle" in metrics and "g/loss" in metrics

    # the objective evaluation command on the checkpoint the DDP run wrote
    scores_path = tmp_path / "scores.json"
    evaluation = subprocess.run(
        [
            sys.executable,
            "-m",
            "cause_pl.cli.main",
            "ganimation-eval",
            "--ckpt",
            str(checkpoint),
            "--shards",
            str(corpus),
            "--reader_steps",
            "20",
            "--batch_size",
            "4",
            "--out",
            str(scores_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert evaluation.returncode == 0, evaluation.stderr[-5000:]
    scores = json.loads(scores_path.read_text())
    assert scores["faces"] > 0 and 0 < scores["identity"] <= 1
    assert all(0 <= scores[name] < 1 for name in ("au_error", "reader_floor", "copy_input_au_error"))


def test_a_face_with_nan_aus_is_refused_naming_it():
    import io

    from PIL import Image

    from cause_pl.data.faces import decode_face
    from cause_pl.shards.schema import face_sample

    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    au = np.zeros(NUM_AUS, np.float32)
    au[3] = np.nan
    sample = {**face_sample("face1", jpeg.getvalue(), au, {}), "__url__": "faces-3.tar"}
    with pytest.raises(ShardError, match=r"faces-3\.tar: sample face1: au holds NaN or infinite values"):
        decode_face(sample, image_size=None)
