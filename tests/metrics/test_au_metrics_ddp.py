"""AUMetrics synced over a real 2-process gloo group equals one process on all utterances."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cause_pl.metrics.au_metrics import AUMetrics
from tests.metrics.test_au_metrics import make_utterances, run, to_batch

WORLD_SIZE = 2
MEAN_AU = torch.linspace(0.2, 1.8, 17)


def _worker(rank: int, init_file: str, utterances: list[dict], out_dir: str) -> None:
    """Each rank scores every other utterance, in reverse order and in small batches."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        split = AUMetrics(mean_au=MEAN_AU)
        mine = utterances[rank::WORLD_SIZE][::-1]
        for start in range(0, len(mine), 3):
            split.update(*to_batch(mine[start : start + 3]))
        one_sided = AUMetrics()  # rank 1 sees no data at all: its empty state must still sync
        if rank == 0:
            one_sided.update(*to_batch(utterances))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # compute() before update() on rank 1
            results = {"split": split.compute().as_flat_dict(), "one_sided": one_sided.compute().as_flat_dict()}
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def _assert_flat_close(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-9, atol=1e-12)


@pytest.mark.timeout(120)
def test_two_process_sync_equals_single_process(tmp_path: Path):
    utterances = make_utterances(seed=21, count=13)
    mp.spawn(_worker, args=(str(tmp_path / "init"), utterances, str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    expected_split = run(utterances, mean_au=MEAN_AU).as_flat_dict()
    expected_one_sided = run(utterances).as_flat_dict()
    assert expected_split["val/num_utterances"] == len(utterances)
    for rank in range(WORLD_SIZE):
        results = json.loads((tmp_path / f"rank{rank}.json").read_text())
        _assert_flat_close(results["split"], expected_split)
        _assert_flat_close(results["one_sided"], expected_one_sided)
