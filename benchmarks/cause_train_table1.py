"""Train each CAUSE architecture for a fixed number of steps on synthetic shards; report training
throughput (frames/s) and write checkpoints for `cause-pl table1`.

    .venv/bin/python data_recipes/synthetic.py --out data/synthetic --only speech_au
    .venv/bin/python benchmarks/cause_train_table1.py --shards data/synthetic/speech_au --steps 300 --out runs/table1
    .venv/bin/cause-pl table1 --shards data/synthetic/speech_au --ckpt runs/table1/*.ckpt --out runs/table1/table1

A causal net's look-ahead follows its name after a colon: ``--archs cnn causal_cnn:0 causal_cnn:2``
trains the CNN and two causal CNNs (checkpoints ``cnn.ckpt``, ``causal_cnn-L0.ckpt``, ``causal_cnn-L2.ckpt``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from cause_pl.data import SpeechAUDataModule
from cause_pl.models import CAUSERegressor


class Throughput(pl.Callback):
    """Frames per second over training steps after the first few (warm-up excluded)."""

    def __init__(self, skip: int = 5) -> None:
        self.skip, self.frames, self.started = skip, 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.skip:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.skip:
            self.frames += int(batch["mel"].shape[0] * batch["mel"].shape[1])

    @property
    def rate(self) -> float:
        return self.frames / (time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/table1"))
    parser.add_argument("--archs", nargs="+", default=["mlp", "rnn", "cnn", "dcnn"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"| arch | params | train frames/s ({args.threads} thread(s), batch 16 x 128 frames) |\n|---|---|---|")
    for spec in args.archs:
        arch, _, lookahead = spec.partition(":")
        pl.seed_everything(0, verbose=False)
        data = SpeechAUDataModule(
            args.shards,
            batch_size=16,
            crop_frames=128,
            num_workers=1,
            train_samples_per_epoch=16 * args.steps,
            shuffle_buffer=200,
        )
        model = CAUSERegressor(
            arch=arch, lr=3e-3, warmup_steps=20, log_per_au=False, lookahead=int(lookahead) if lookahead else None
        )
        meter = Throughput()
        trainer = pl.Trainer(
            max_steps=args.steps,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            limit_val_batches=0,
            callbacks=[meter],
            enable_model_summary=False,
        )
        trainer.fit(model, datamodule=data)
        trainer.save_checkpoint(args.out / f"{spec.replace(':', '-L')}.ckpt")
        params = sum(p.numel() for p in model.net.parameters())
        print(f"| {spec} | {params:,} | {meter.rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
