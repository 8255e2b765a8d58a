"""Speech-driven animation speed, end to end (audio file in, mp4 out), split by stage.

    .venv/bin/python benchmarks/animate.py                       # paper-size generator (128 px), CPU
    .venv/bin/python benchmarks/animate.py --small               # the demo's 64-px generator
    .venv/bin/python benchmarks/animate.py --device cuda
    .venv/bin/python benchmarks/animate.py --cause-ckpt C --ganimation-ckpt G   # your checkpoints

Stages (``AnimationResult.timings``): ``estimate`` (mel frontend + CAUSE over the whole audio),
``generate`` (GANimation, ``--batch-frames`` frames per call, uint8 conversion included) and
``encode`` (waiting for the H.264 + AAC encoder, which works on a second thread while the next batch
is generated); ``end to end`` also counts decoding the audio file and loading the face. Speed does
not depend on training, so without checkpoints freshly initialised nets of the same shapes are
timed. The animator is built as ``cause-pl animate`` builds it: the nets are put on ``--device``
(``from_checkpoints(map_location=...)``, or fresh nets moved there) and the animator follows them;
the timed call is the command's ``animator.animate``. Rows: frames/s per stage and the stage's share
of the end-to-end time; a cProfile of one run tells whether Python overhead matters (``--profile``).
"""

from __future__ import annotations

import argparse
import cProfile
import tempfile
import time
from pathlib import Path

import harness  # first: pins OMP threads before torch is imported
import numpy as np
import soundfile
import torch

from cause_pl.au import NUM_AUS
from cause_pl.inference.animator import SpeechToFaceAnimator
from cause_pl.models import CAUSERegressor, GANimation
from cause_pl.synthetic.face_identity import corpus_identity
from cause_pl.synthetic.faces import draw_face
from cause_pl.synthetic.speech import synth_utterance

SMALL_GENERATOR = {
    "image_size": 64,
    "g_base_channels": 32,
    "g_res_blocks": 3,
    "d_base_channels": 32,
    "d_layers": 5,
    "d_max_channels": 512,
}
COLUMNS = ("stage", "seconds", "frames/s", "share")


def fresh_animator(small: bool, batch_frames: int, bf16: bool, device: str = "cpu") -> SpeechToFaceAnimator:
    """Untrained CAUSE CNN (unit normalisation) + GANimation of the paper's or the demo's size, both put
    on ``device`` in eval mode before the animator is built (what ``from_checkpoints`` does)."""
    cause = CAUSERegressor(arch="cnn")
    n_mels = cause.frontend_config.n_mels
    cause.set_normalization(torch.zeros(n_mels), torch.ones(n_mels), torch.zeros(NUM_AUS))
    ganimation = GANimation(**SMALL_GENERATOR) if small else GANimation()
    return SpeechToFaceAnimator(
        cause.to(device).eval(), ganimation.to(device).eval(), frames_per_batch=batch_frames, bf16=bf16
    )


def speech_file(folder: Path, seconds: float, sample_rate: int) -> Path:
    """``seconds`` of synthetic speech (utterances of one speaker back to back) as a wav file."""
    waves, total, index = [], 0, 0
    while total < seconds * sample_rate:
        wave = synth_utterance(0, index, sample_rate=sample_rate).wave
        waves.append(wave)
        total, index = total + len(wave), index + 1
    path = folder / "speech.wav"
    soundfile.write(path, np.concatenate(waves)[: int(seconds * sample_rate)], sample_rate)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the speech")
    parser.add_argument("--small", action="store_true", help="the demo's 64-px generator instead of 128 px")
    parser.add_argument("--batch-frames", type=int, default=32)
    parser.add_argument("--cause-ckpt", type=Path)
    parser.add_argument("--ganimation-ckpt", type=Path)
    parser.add_argument("--bf16", action="store_true", help="generate under bf16 autocast")
    parser.add_argument("--profile", action="store_true", help="print the top functions of one run (cProfile)")
    harness.add_common_flags(parser)
    args = parser.parse_args()
    harness.setup(args)
    if args.cause_ckpt and args.ganimation_ckpt:
        animator = SpeechToFaceAnimator.from_checkpoints(
            args.cause_ckpt,
            args.ganimation_ckpt,
            map_location=args.device,
            frames_per_batch=args.batch_frames,
            bf16=args.bf16,
        )
    else:
        animator = fresh_animator(args.small, args.batch_frames, args.bf16, args.device)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        audio = speech_file(folder, args.seconds, animator.sample_rate)
        face = folder / "face.png"
        draw_face(np.zeros(NUM_AUS), corpus_identity(0), animator.image_size).save(face)
        animator.animate(audio, face, folder / "warmup.mp4")
        runs = []
        for repeat in range(args.repeats):
            harness.synchronize(args.device)
            started = time.perf_counter()
            result = animator.animate(audio, face, folder / f"run{repeat}.mp4")
            runs.append((time.perf_counter() - started, result))
        wall, result = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
        print(
            f"{result.frames} frames ({result.seconds:.1f} s of speech) at {animator.image_size} px, "
            f"batch {args.batch_frames}, {'bf16' if args.bf16 else 'fp32'}, device {args.device}, "
            f"{torch.get_num_threads()} thread(s); "
            f"median of {args.repeats}"
        )
        rows = [
            {"stage": name, "seconds": seconds, "frames/s": result.frames / seconds, "share": seconds / wall}
            for name, seconds in result.timings.items()
        ]
        rows.append({"stage": "end to end", "seconds": wall, "frames/s": result.frames / wall, "share": 1.0})
        harness.print_header(COLUMNS)
        for row in rows:
            harness.print_row(COLUMNS, row)
        functions = []
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(animator.animate, audio, face, folder / "profiled.mp4")
            functions = harness.top_functions(profiler, 15)
            harness.print_top_functions("top functions by cumulative time (one run):", functions)
    harness.save(
        args.out,
        args,
        rows=rows,
        profile=functions,
        setup={
            "frames": result.frames,
            "image_size": animator.image_size,
            "batch_frames": args.batch_frames,
            "bf16": args.bf16,
        },
    )


if __name__ == "__main__":
    main()
