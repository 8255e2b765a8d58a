"""One small training run for tests/data/test_resume.py, run as its own process (it may be killed).

    python -m tests.data.resume_run KIND ROOT OUT --version NAME [--kill_step N] [--signal_step N] [--ckpt PATH]

KIND is ``cause`` (CNN with dropout, warmup + cosine schedule) or ``ganimation`` (tiny 32 px
model). Runs on CPU with one thread, seeded, one DataLoader worker or more, a CSVLogger row per step
and a ModelCheckpoint every few steps (``last.ckpt``). ``--kill_step``: SIGKILL this process at the
end of that global step. ``--signal_step``: send this process SIGUSR1 in the middle of that step
(before the backward pass), as SLURM does before a time limit; with SLURM variables in the
environment Lightning then saves ``hpc_ckpt_1.ckpt``. At the end the final weights are saved to
``OUT/NAME-final.pt``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from cause_pl.data import FaceAUDataModule, SpeechAUDataModule
from cause_pl.models import CAUSERegressor, GANimation

CHECKPOINT_EVERY = {"cause": 5, "ganimation": 3}
MAX_EPOCHS = 2


class Interrupt(Callback):
    """SIGKILL the process after global step ``kill_step``; SIGUSR1 inside step ``signal_step``."""

    def __init__(self, kill_step: int | None, signal_step: int | None) -> None:
        self.kill_step, self.signal_step = kill_step, signal_step

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        # global_step counts finished optimizer steps: this is the backward of step global_step + 1.
        if self.signal_step is not None and trainer.global_step + 1 == self.signal_step:
            self.signal_step = None
            os.kill(os.getpid(), signal.SIGUSR1)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if self.kill_step is not None and trainer.global_step >= self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)


def build(kind: str, root: str) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    if kind == "cause":
        data: pl.LightningDataModule = SpeechAUDataModule(
            root, batch_size=4, crop_frames=32, train_samples_per_epoch=48, num_workers=2, shuffle_buffer=8
        )
        model: pl.LightningModule = CAUSERegressor(arch="cnn", lr=3e-3, scheduler="cosine", warmup_steps=2)
    else:
        data = FaceAUDataModule(
            root,
            batch_size=4,
            image_size=32,
            train_samples_per_epoch=40,
            num_workers=1,
            shuffle_buffer=8,
            eval_batch_size=8,
        )
        model = GANimation(
            image_size=32,
            g_base_channels=8,
            g_res_blocks=1,
            d_base_channels=8,
            d_layers=3,
            epochs_constant=1,
            epochs_decay=2,
        )
    return model, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("cause", "ganimation"))
    parser.add_argument("root")
    parser.add_argument("out")
    parser.add_argument("--version", required=True)
    parser.add_argument("--kill_step", type=int)
    parser.add_argument("--signal_step", type=int)
    parser.add_argument("--ckpt")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    model, data = build(args.kind, args.root)
    out = Path(args.out)
    checkpoints = ModelCheckpoint(
        dirpath=out / "checkpoints", every_n_train_steps=CHECKPOINT_EVERY[args.kind], save_last=True, save_top_k=-1
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=MAX_EPOCHS,
        default_root_dir=str(out),
        logger=CSVLogger(str(out), name="logs", version=args.version, flush_logs_every_n_steps=1),
        log_every_n_steps=1,
        callbacks=[checkpoints, Interrupt(args.kill_step, args.signal_step)],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    trainer.fit(model, datamodule=data, ckpt_path=args.ckpt)
    torch.save(model.state_dict(), out / f"{args.version}-final.pt")


if __name__ == "__main__":
    main()
