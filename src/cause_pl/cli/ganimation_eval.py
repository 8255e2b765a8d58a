"""``cause-pl ganimation-eval``: AU error and identity score of a GANimation checkpoint on face shards."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from cause_pl.data.faces import FaceAUDataModule
from cause_pl.evaluation.ganimation import fit_face_au_regressor, score
from cause_pl.models.ganimation import load_ganimation_checkpoint


def ganimation_eval(argv: Sequence[str]) -> int:
    """AU error (target vs. AUs read from generated faces) and identity score of a GANimation checkpoint."""
    parser = argparse.ArgumentParser(prog="cause-pl ganimation-eval", description=ganimation_eval.__doc__)
    parser.add_argument("--ckpt", required=True, type=Path, help="GANimation checkpoint")
    parser.add_argument("--shards", required=True, type=Path, help="faces shard directory (index.json)")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--reader-steps", type=int, default=500, help="training steps of the AU regressor")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    args = parser.parse_args(argv)
    if not args.ckpt.is_file():
        parser.error(f"checkpoint not found: {args.ckpt}")
    torch.manual_seed(args.seed)
    model = load_ganimation_checkpoint(args.ckpt)
    data = FaceAUDataModule(
        str(args.shards), batch_size=args.batch_size, num_workers=0, image_size=model.hparams.image_size, seed=args.seed
    )
    reader = fit_face_au_regressor(data.train_dataloader(), args.reader_steps)
    scores = score(model, data, args.split, reader)
    for name, value in scores.items():
        print(f"{name:>20}: {value:.4f}" if isinstance(value, float) else f"{name:>20}: {value}")
    if args.out:
        args.out.write_text(json.dumps(scores, indent=1) + "\n")
    return 0
