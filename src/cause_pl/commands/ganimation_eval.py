"""``cause-pl ganimation-eval``: objective scores of a GANimation checkpoint on face shards.

AU error: the target AUs against the AUs that an independent regressor reads from the generated
images. The regressor is trained here on the real training faces, so the generator never trained
against it. Identity: :func:`cause_pl.ganimation_eval.identity_score`. Two reference rows frame the
numbers: the regressor on real images against their own AUs (its floor), and copying the input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from cause_pl.data.faces import FaceAUDataModule
from cause_pl.ganimation_eval import au_error, fit_face_au_regressor, identity_score
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint


@torch.inference_mode()
def score(model: GANimation, data: FaceAUDataModule, split: str, reader) -> dict[str, float]:
    """Batch-weighted means of the AU errors and identity over every face of ``split``."""
    sums = {"au_error": 0.0, "identity": 0.0, "reader_floor": 0.0, "copy_input_au_error": 0.0}
    count = 0
    for batch in tqdm(data.eval_dataloader(split), desc=split, unit="batch", leave=False):
        image, target = batch["image"], batch["target_au"]
        generated = model.generate(image, target).image
        size = len(image)
        sums["au_error"] += size * au_error(generated, target, reader)
        sums["identity"] += size * identity_score(generated, image)
        sums["reader_floor"] += size * au_error(image, batch["au"], reader)
        sums["copy_input_au_error"] += size * au_error(image, target, reader)
        count += size
    return {name: value / max(count, 1) for name, value in sums.items()} | {"faces": count}


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
    data = FaceAUDataModule(str(args.shards), batch_size=args.batch_size, num_workers=0,
                            image_size=model.hparams.image_size, seed=args.seed)
    reader = fit_face_au_regressor(data.train_dataloader(), args.reader_steps)
    scores = score(model, data, args.split, reader)
    for name, value in scores.items():
        print(f"{name:>20}: {value:.4f}" if isinstance(value, float) else f"{name:>20}: {value}")
    if args.out:
        args.out.write_text(json.dumps(scores, indent=1) + "\n")
    return 0
