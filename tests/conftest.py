"""Suite-wide settings: one intra-op thread per process, and no network for W&B.

The nets under test are small; on a 2-core machine shared by the test process, DataLoader workers
and DDP ranks, several OpenMP threads per process make them ~10x slower, not faster. Subprocesses
(the CLI, recipes, DDP ranks) inherit the environment variables. Tests marked ``cuda`` are skipped
when torch sees no CUDA device.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import torch

torch.set_num_threads(1)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """``cause-pl demo --quick`` run once per session: tiny corpora, checkpoints, an animation."""
    from cause_pl.demo.pipeline import run_demo
    from cause_pl.demo.plan import DemoPlan

    return run_demo(tmp_path_factory.mktemp("quick_demo"), DemoPlan.quick())


def pytest_collection_modifyitems(config, items):
    """Skip ``cuda``-marked tests where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is false)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
