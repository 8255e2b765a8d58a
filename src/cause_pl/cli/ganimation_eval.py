"""``cause-pl ganimation-eval``: AU error and identity score of a GANimation checkpoint on face shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

from cause_pl.cli.command import UsageError, require_file, require_output
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.evaluation.ganimation import fit_face_au_regressor, score
from cause_pl.media.atomic import atomic_output
from cause_pl.models.ganimation import load_ganimation_checkpoint


def ganimation_eval(
    *,
    ckpt: Path,
    shards: Path,
    split: Literal["val", "test"] = "val",
    reader_steps: int = 500,
    batch_size: int = 16,
    seed: int = 0,
    out: Path | None = None,
    shard_url: str | None = None,
    allow_missing: bool = False,
) -> int:
    """AU error (target vs. AUs read from generated faces) and identity score of a GANimation checkpoint.

    Args:
        ckpt: GANimation checkpoint
        shards: faces shard directory (index.json)
        split: split to score
        reader_steps: training steps of the AU regressor
        batch_size: faces per batch
        seed: seed of the AU regressor and the data order
        out: also write the scores as JSON here
        shard_url: read the shards from here instead of SHARDS (which still holds index.json): a template
            whose {name} is each shard's file name, a path (/scratch/celeba/{name}) or a command writing
            the shard to stdout (pipe:aws s3 cp s3://bucket/celeba/{name} -)
        allow_missing: score the readable faces when shards are damaged (skipped_faces says how many
            were skipped) instead of failing
    """
    if reader_steps < 1:
        raise UsageError(f"--reader_steps must be >= 1, got {reader_steps}")
    if batch_size < 2:
        raise UsageError(f"--batch_size must be >= 2 (each face takes another face's AUs as target), got {batch_size}")
    require_file(ckpt, "--ckpt")
    if out is not None:  # fail before the slow work when the scores cannot be written
        require_output(out, "--out")
    torch.manual_seed(seed)
    model = load_ganimation_checkpoint(ckpt)
    data = FaceAUDataModule(
        str(shards),
        batch_size=batch_size,
        num_workers=0,
        image_size=model.hparams.image_size,
        seed=seed,
        shard_url=shard_url,
    )
    reader = fit_face_au_regressor(data.train_dataloader(), reader_steps)
    scores = score(model, data, split, reader, allow_missing)
    for name, value in scores.items():
        print(f"{name:>20}: {value:.4f}" if isinstance(value, float) else f"{name:>20}: {value}")
    if out:
        with atomic_output(out) as temporary:
            temporary.write_text(json.dumps(scores, indent=1) + "\n")
    return 0
