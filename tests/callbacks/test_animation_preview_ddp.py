"""AnimationPreviewCallback inside a real 2-process gloo DDP fit (``cause-pl fit``, strategy ddp, CPU).

Only rank zero renders; the other rank goes on to its next step and waits for rank zero in the
gradient all-reduce. The fit must finish (a preview that breaks the trained module, or one rendered
on every rank with different step counts, would fail or hang it) with a preview per epoch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from tests.builders.mp4_probe import decode_mp4
from tests.cli.test_main import SYNTHETIC_CONFIG, cause_pl, fit_overrides

pytestmark = pytest.mark.slow


def test_preview_in_a_two_process_ddp_fit(quick_demo, tmp_path):
    shards = tmp_path / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=4, utterances_per_speaker=4, shard_size=2, max_seconds=3))
    files = quick_demo.files
    run = tmp_path / "run"
    overrides = [
        *fit_overrides(shards, run, 6),
        "--data.init_args.train_samples_per_epoch=96",  # 3 steps per epoch on each of 2 ranks, batch 16
        "--trainer.callbacks+=cause_pl.callbacks.AnimationPreviewCallback",
        f"--trainer.callbacks.audio={files['speech']}",
        f"--trainer.callbacks.face={files['face']}",
        f"--trainer.callbacks.ganimation_ckpt={files['ganimation_checkpoint']}",
        "--trainer.callbacks.seconds=0.5",
        "--trainer.accelerator=cpu",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.limit_val_batches=1",
    ]
    cause_pl("fit", *SYNTHETIC_CONFIG, *overrides, timeout=600)
    previews = sorted(Path(run).rglob("animation_preview/epoch*.mp4"))
    assert [path.name for path in previews] == ["epoch000.mp4", "epoch001.mp4"]
    assert len(decode_mp4(previews[-1]).frames) == 13
    checkpoint = next(run.rglob("last.ckpt"), None) or next(run.rglob("*.ckpt"))
    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"] == 6
