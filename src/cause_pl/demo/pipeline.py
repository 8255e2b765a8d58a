"""The main job on built-in synthetic data (``cause-pl demo`` / ``make demo``), stage by stage.

1. ``data``: the synthetic speech+AU corpus as shards (as the real-data recipes write); a second
   process (:mod:`cause_pl.demo.background`) writes the face+AU corpus meanwhile and then trains the
   independent face AU reader that ``ganimation-eval`` uses, through stage 2;
2. ``cause``: a CAUSE CNN trained on the speech shards (one thread); the stage ends when the second
   process is done too;
3. ``ganimation``: a small GANimation (64 px) trained on the face shards with every core;
4. ``evaluate``: Table 1 style MAE/MSE with 95% CIs on the held-out speakers, with the Zero and
   Mean baselines; ``ganimation-eval``'s AU error (with its copy-the-input baseline) and identity
   score on the validation faces;
5. ``animate``: a held-out face (neutral expression) animated by a held-out utterance: an mp4 with
   the speech as sound, the predicted and the true AU tracks as OpenFace-style CSVs, a plot of
   both, a frame strip.

Everything lands in one folder; ``summary.json`` lists the files, the scores and the wall time of
each stage. The default plan takes about 3 minutes on 2 CPU cores with AVX-512 and 5 minutes on 2
without it (fp32); :meth:`DemoPlan.quick` is a small smoke version for tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import soundfile

from cause_pl.au import NUM_AUS
from cause_pl.demo.background import BackgroundJob
from cause_pl.demo.plan import DemoOutputs, DemoPlan
from cause_pl.demo.scoring import evaluate_cause, evaluate_ganimation
from cause_pl.demo.training import train_cause, train_ganimation, write_faces_and_fit_reader
from cause_pl.evaluation.plots import au_tracks_figure, save_figure
from cause_pl.inference.animator import AnimationResult, SpeechToFaceAnimator
from cause_pl.media.frames import write_png_strip
from cause_pl.openface.writer import write_openface_style_csv
from cause_pl.shards.schema import FACES, SPEECH_AU
from cause_pl.synthetic.corpus import describe, write_speech_corpus
from cause_pl.synthetic.face_identity import corpus_identity
from cause_pl.synthetic.faces import draw_face
from cause_pl.synthetic.speech import synth_utterance


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
    data, checkpoints, logs = outputs.out / "data", outputs.out / "checkpoints", outputs.out / "logs"
    checkpoints.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    cause_ckpt, gan_ckpt = checkpoints / "cause_cnn.ckpt", checkpoints / "ganimation.ckpt"
    reader_weights = checkpoints / "face_au_reader.pt"
    second_log = logs / "faces_and_reader.log"
    with BackgroundJob(write_faces_and_fit_reader, plan, data / FACES, reader_weights, log=second_log) as face_job:
        with outputs.stage("data", "building the speech corpus; a second process builds the face corpus"):
            print(describe(write_speech_corpus(data / SPEECH_AU, plan.corpus)))
        with outputs.stage("cause", "training CAUSE (CNN); the second process trains the face AU reader"):
            train_cause(plan, data / SPEECH_AU, cause_ckpt)
            description, seconds = face_job.result()
            print(description)
            print("second process: " + ", ".join(f"{part} {value:.1f} s" for part, value in seconds.items()))
    with outputs.stage("ganimation", f"training GANimation ({plan.gan_image_size} px) on the face shards"):
        train_ganimation(plan, data / FACES, gan_ckpt)
    with outputs.stage("evaluate", "Table 1 on held-out speakers; GANimation's AU error and identity"):
        outputs.scores.update(evaluate_cause(cause_ckpt, data / SPEECH_AU, outputs.out / "metrics", plan.workers))
        outputs.scores.update(evaluate_ganimation(plan, gan_ckpt, data / FACES, reader_weights))
    with outputs.stage("animate", "animating a held-out face with a held-out utterance"):
        render_demo_animation(plan, cause_ckpt, gan_ckpt, outputs)
    outputs.files.update(
        cause_checkpoint=cause_ckpt,
        ganimation_checkpoint=gan_ckpt,
        face_au_reader=reader_weights,
        metrics=outputs.out / "metrics.md",
        logs=logs,
        data=data,
    )
    outputs.files["summary"] = outputs.write_summary()
    return outputs
