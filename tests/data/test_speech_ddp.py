"""SpeechAUDataModule in a real 2-process gloo group: eval reads every utterance once, ranks train in lockstep.

DataLoader workers start with ``fork`` (what torchrun/SLURM launches get on Linux) and, marked slow
because every worker then imports torch afresh, with ``spawn`` (what ddp_spawn and macOS get, where
reading the rank from ``torch.distributed`` inside workers goes wrong).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cause_pl.data import SpeechAUDataModule
from cause_pl.synthetic.corpus import write_speech_corpus
from tests.data.test_speech import SPEC
from tests.recipes.util import read_split

WORLD_SIZE = 2
EPOCHS = 2
DDP_SPEC = replace(SPEC, utterances_per_speaker=4, shard_size=1)
"""16 train / 4 val / 4 test utterances, one per shard: 4 eval shards feed 2 ranks x 2 workers."""


def _gathered(value):
    """``value`` from every rank, in rank order."""
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def _worker(rank: int, init_file: str, root: str, out_dir: str, worker_start: str) -> None:
    torch.set_num_threads(1)
    mp.set_start_method(worker_start, force=True)  # what the DataLoader's workers use
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        dm = SpeechAUDataModule(root, batch_size=4, crop_frames=64, num_workers=2, shuffle_buffer=8, eval_batch_size=3)
        dm.distribute(dist.get_rank(), dist.get_world_size())
        dm.setup("fit")
        results = {split: _gathered(keys(dm.eval_dataloader(split))) for split in ("val", "test")}
        torch.manual_seed(0)  # as seed_everything does, the same on every rank
        loader = dm.train_dataloader()
        steps, train_keys = [], []
        for _ in range(EPOCHS):
            count = 0
            for batch in loader:
                # One collective per step, like DDP's gradient all-reduce: unequal batch counts would hang here.
                dist.all_reduce(torch.ones(1))
                count += 1
                train_keys.extend(batch["keys"])
            steps.append(count)
        results["train_steps"] = _gathered(steps)
        results["train_batches_per_epoch"] = _gathered(dm.train_batches_per_epoch)
        results["train_keys"] = _gathered(train_keys)
        if rank == 0:
            Path(out_dir, "results.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def keys(loader) -> list[str]:
    return [key for batch in loader for key in batch["keys"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("worker_start", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_two_ranks_read_eval_once_and_train_the_same_number_of_batches(tmp_path: Path, worker_start: str):
    root = tmp_path / "shards"
    write_speech_corpus(root, DDP_SPEC)
    args = (str(tmp_path / "init"), str(root), str(tmp_path), worker_start)
    mp.spawn(_worker, args=args, nprocs=WORLD_SIZE, join=True)
    results = json.loads((tmp_path / "results.json").read_text())
    for split in ("val", "test"):
        per_rank = results[split]
        expected = Counter(sample["__key__"] for sample in read_split(root, split))
        assert Counter(per_rank[0] + per_rank[1]) == expected
        assert per_rank[0] and per_rank[1]
    # 16 train utterances, 2 ranks x 2 workers x batch 4: 1 batch per worker, 2 per rank.
    assert results["train_batches_per_epoch"] == [2, 2]
    assert results["train_steps"] == [[2] * EPOCHS, [2] * EPOCHS]
    assert results["train_keys"][0] != results["train_keys"][1]


class _Fitted(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(80))

    def setup(self, stage: str) -> None:
        # ddp_spawn's ranks inherit ``spawn`` for their DataLoader workers, and each spawned worker imports torch
        # again (~8 s per loader here). The sum over ranks is the same with forked workers, as torchrun's ranks get.
        mp.set_start_method("fork", force=True)

    def training_step(self, batch, batch_idx):
        return (batch["mel"][batch["mask"]] * self.weight).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.timeout(300)
def test_skipped_samples_are_summed_over_ranks(tmp_path: Path):
    root = write_speech_corpus(tmp_path / "shards", replace(SPEC, utterances_per_speaker=4)).root
    for shard in json.loads((root / "index.json").read_text())["splits"]["val"]["shards"]:
        path = root / shard["name"]
        path.write_bytes(path.read_bytes()[:3000])  # each rank's val shard loses samples (one read error each)
    dm = SpeechAUDataModule(str(root), batch_size=2, num_workers=1, train_samples_per_epoch=16)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=WORLD_SIZE,
        strategy="ddp_spawn",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(_Fitted(), datamodule=dm)
    assert trainer.callback_metrics["data/val_skipped_samples"].item() == WORLD_SIZE
    assert trainer.callback_metrics["data/skipped_samples"].item() == 0
