"""The main job on built-in synthetic data (``cause-pl demo`` / ``make demo``), stage by stage.

1. ``data``: the synthetic speech+AU and face+AU corpora as shards (as the real-data recipes write);
2. ``cause``: a CAUSE CNN trained on the speech shards;
3. ``ganimation``: a small GANimation (64 px) trained on the face shards;
4. ``evaluate``: Table 1 style MAE/MSE with 95% CIs on the held-out speakers, with the Zero and
   Mean baselines;
5. ``animate``: a held-out face (neutral expression) animated by a held-out utterance: an mp4 with
   the speech as sound, the predicted and the true AU tracks as OpenFace-style CSVs, a plot of
   both, a frame strip.

Everything lands in one folder; ``summary.json`` lists the files, the scores and the wall time of
each stage. The default plan takes a few minutes on 2 CPU cores; :meth:`DemoPlan.quick` is a
small smoke version for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import soundfile
import torch
from pytorch_lightning.loggers import CSVLogger

from cause_pl.au import NUM_AUS
from cause_pl.callbacks import SampleGridCallback
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.data.speech import SpeechAUDataModule
from cause_pl.demo.plan import DemoOutputs, DemoPlan
from cause_pl.evaluation.plots import au_tracks_figure, save_figure
from cause_pl.evaluation.table1 import evaluate_on_shards, table_rows, write_table
from cause_pl.inference.animator import AnimationResult, SpeechToFaceAnimator
from cause_pl.media.frames import write_png_strip
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.models.ganimation import GANimation
from cause_pl.openface.writer import write_openface_style_csv
from cause_pl.shards.schema import FACES, SPEECH_AU
from cause_pl.synthetic.corpus import describe, write_face_corpus, write_speech_corpus
from cause_pl.synthetic.face_identity import corpus_identity
from cause_pl.synthetic.faces import draw_face
from cause_pl.synthetic.speech import synth_utterance


def _trainer(out: Path, name: str, max_epochs: int, **options: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=CSVLogger(out / "logs", name=name),
        enable_checkpointing=False,
        log_every_n_steps=10,
        default_root_dir=out / "logs",
        **options,
    )


def train_cause(plan: DemoPlan, shards: Path, checkpoint: Path) -> CAUSERegressor:
    """The paper's CNN, trained on the speech shards; saved to ``checkpoint``."""
    model = CAUSERegressor(arch="cnn", lr=3e-3, scheduler="cosine", warmup_steps=20, log_per_au=False)
    data = SpeechAUDataModule(
        str(shards),
        batch_size=16,
        crop_frames=128,
        num_workers=plan.workers,
        train_samples_per_epoch=plan.cause_samples_per_epoch,
        shuffle_buffer=200,
        eval_batch_size=8,
        seed=plan.seed,
    )
    trainer = _trainer(checkpoint.parent.parent, "cause", plan.cause_epochs, gradient_clip_val=1.0)
    torch.set_num_threads(plan.cause_threads)
    trainer.fit(model, data)
    trainer.save_checkpoint(checkpoint, weights_only=False)
    return model


def train_ganimation(plan: DemoPlan, shards: Path, checkpoint: Path) -> GANimation:
    """A small GANimation (the synthetic config's model) trained on the face shards."""
    model = GANimation(
        image_size=plan.gan_image_size,
        g_base_channels=32,
        g_res_blocks=3,
        d_base_channels=32,
        d_layers=min(5, int(np.log2(plan.gan_image_size)) - 1),
        d_max_channels=512,
        lr_g=5e-4,
        lr_d=5e-4,
        critic_steps=1,
        epochs_constant=plan.gan_epochs_constant,
        epochs_decay=plan.gan_epochs_decay,
        saturation_threshold=0.99,
    )
    data = FaceAUDataModule(
        str(shards),
        image_size=plan.gan_image_size,
        batch_size=16,
        train_samples_per_epoch=plan.gan_samples_per_epoch,
        num_workers=1,
        shuffle_buffer=300,
        eval_batch_size=16,
        seed=plan.seed,
    )
    epochs = plan.gan_epochs_constant + plan.gan_epochs_decay
    trainer = _trainer(
        checkpoint.parent.parent,
        "ganimation",
        epochs,
        limit_val_batches=2,
        precision=plan.gan_precision,
        callbacks=[SampleGridCallback(num_faces=4)],
    )
    torch.set_num_threads(plan.gan_threads)
    trainer.fit(model, data)
    trainer.save_checkpoint(checkpoint, weights_only=False)
    return model


def evaluate_cause(checkpoint: Path, shards: Path, out: Path, workers: int) -> dict[str, float]:
    """Table 1 on the test split (held-out speakers): the CNN against Zero and Mean; returns MAEs."""
    report = evaluate_on_shards(load_cause_checkpoint(checkpoint), shards, "test", num_workers=min(workers, 1))
    rows = table_rows({"CNN": report})
    caption = (
        f"CAUSE on the synthetic test split ({report.num_utterances} utterances of held-out speakers, "
        f"{report.num_frames} valid frames). 95% CIs: jackknife over utterances."
    )
    print(write_table(rows, caption, out))
    return {f"{row['method'].lower()}_mae": round(float(row["mae"]), 4) for row in rows}


def render_demo_animation(
    plan: DemoPlan, cause_ckpt: Path, ganimation_ckpt: Path, outputs: DemoOutputs
) -> AnimationResult:
    """A held-out face animated by a held-out utterance, with its AU plot and frame strip."""
    spec, out = plan.corpus, outputs.out
    utterance = synth_utterance(
        spec.speakers - 1,
        0,
        seed=spec.seed,
        sample_rate=spec.frontend.sample_rate,
        fps=spec.frontend.fps,
        min_seconds=spec.min_seconds,
        max_seconds=spec.max_seconds,
    )
    speech, face = out / "speech.wav", out / "face.png"
    soundfile.write(speech, utterance.wave, utterance.sample_rate)
    draw_face(np.zeros(NUM_AUS), corpus_identity(spec.identities - 1, seed=spec.seed), spec.face_size).save(face)
    animator = SpeechToFaceAnimator.from_checkpoints(cause_ckpt, ganimation_ckpt)
    result = animator.animate(speech, face, out / "animation.mp4", progress=True, au_csv=out / "predicted_aus.csv")
    frames = result.frames
    write_openface_style_csv(utterance.aus[:frames], animator.fps, out / "true_aus.csv", valid=utterance.valid[:frames])
    figure = au_tracks_figure(
        result.au_track.numpy(),
        utterance.aus[:frames],
        utterance.valid[:frames],
        fps=animator.fps,
        title=f"{utterance.key} (held-out speaker): CAUSE CNN vs. truth",
    )
    save_figure(figure, out / "au_tracks.png")
    write_png_strip(out / "frames.png", animator.key_frames(animator.load_face(face), result.au_track), height=128)
    outputs.files.update(
        speech=speech,
        face=face,
        animation=result.path,
        predicted_aus=out / "predicted_aus.csv",
        true_aus=out / "true_aus.csv",
        au_plot=out / "au_tracks.png",
        frame_strip=out / "frames.png",
    )
    outputs.scores.update(
        animate_frames_per_second=round(result.frames_per_second, 1),
        **{f"animate_{name}_seconds": round(value, 2) for name, value in result.timings.items()},
    )
    return result


def run_demo(out: Path, plan: DemoPlan | None = None) -> DemoOutputs:
    """All five stages into ``out``; returns what was made (also in ``out/summary.json``)."""
    plan = plan or DemoPlan()
    pl.seed_everything(plan.seed, workers=True)
    outputs = DemoOutputs(Path(out))
    data, checkpoints = outputs.out / "data", outputs.out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    with outputs.stage("data", "building the synthetic corpora"):
        for index in (
            write_speech_corpus(data / SPEECH_AU, plan.corpus, workers=plan.workers),
            write_face_corpus(data / FACES, plan.corpus, workers=plan.workers),
        ):
            print(describe(index))
    cause_ckpt, gan_ckpt = checkpoints / "cause_cnn.ckpt", checkpoints / "ganimation.ckpt"
    with outputs.stage("cause", "training CAUSE (CNN) on the speech shards"):
        train_cause(plan, data / SPEECH_AU, cause_ckpt)
    with outputs.stage("ganimation", f"training GANimation ({plan.gan_image_size} px) on the face shards"):
        train_ganimation(plan, data / FACES, gan_ckpt)
    with outputs.stage("evaluate", "Table 1 on held-out speakers"):
        outputs.scores.update(evaluate_cause(cause_ckpt, data / SPEECH_AU, outputs.out / "metrics", plan.workers))
    with outputs.stage("animate", "animating a held-out face with a held-out utterance"):
        render_demo_animation(plan, cause_ckpt, gan_ckpt, outputs)
    outputs.files.update(
        cause_checkpoint=cause_ckpt,
        ganimation_checkpoint=gan_ckpt,
        metrics=outputs.out / "metrics.md",
        logs=outputs.out / "logs",
        data=data,
    )
    outputs.files["summary"] = outputs.write_summary()
    return outputs
