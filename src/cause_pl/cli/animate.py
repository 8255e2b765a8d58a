"""``cause-pl animate``: a still face animated by speech, written as an mp4 with the speech as sound."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cause_pl.media.audio import AudioError
from cause_pl.media.image import FaceImageError


def animate(argv: Sequence[str]) -> int:
    """Animate FACE (any image; centre-cropped to a square and resized to the generator's size) with
    the speech in AUDIO (any audio or video file, any length) into an H.264 + AAC mp4 at 25 fps."""
    from cause_pl.inference.animator import SpeechToFaceAnimator
    from cause_pl.media.frames import write_png_strip

    parser = argparse.ArgumentParser(prog="cause-pl animate", description=animate.__doc__)
    parser.add_argument("--audio", required=True, type=Path, help="speech: wav, flac, mp3, m4a, mp4, ...")
    parser.add_argument("--face", required=True, type=Path, help="face image: png, jpg, webp, ...")
    parser.add_argument("--cause-ckpt", required=True, type=Path, help="CAUSE checkpoint")
    parser.add_argument("--ganimation-ckpt", required=True, type=Path, help="GANimation checkpoint")
    parser.add_argument("--out", required=True, type=Path, help="output mp4")
    parser.add_argument("--au-csv", type=Path, help="also save the AU track driving the frames (OpenFace-style CSV)")
    parser.add_argument("--strip", type=Path, help="also save a PNG strip of 8 frames")
    parser.add_argument("--au-scale", type=float, default=1.0, help="multiply AU intensities (0 = still face)")
    parser.add_argument("--smoothing", type=int, default=1, help="moving-average window in frames (odd; 1 = none)")
    parser.add_argument("--batch-frames", type=int, default=32, help="frames generated per batch")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--bf16", action="store_true", help="generate under bf16 autocast (GPUs, CPUs with native bf16)"
    )
    args = parser.parse_args(argv)
    for flag, path in (
        ("--cause-ckpt", args.cause_ckpt),
        ("--ganimation-ckpt", args.ganimation_ckpt),
        ("--audio", args.audio),
        ("--face", args.face),
    ):
        if not path.is_file():
            parser.error(f"{flag}: file not found: {path}")
    try:
        animator = SpeechToFaceAnimator.from_checkpoints(
            args.cause_ckpt,
            args.ganimation_ckpt,
            map_location=args.device,
            au_scale=args.au_scale,
            smoothing_frames=args.smoothing,
            frames_per_batch=args.batch_frames,
            bf16=args.bf16,
        )
        result = animator.animate(args.audio, args.face, args.out, progress=True, au_csv=args.au_csv)
    except (AudioError, FaceImageError, ValueError) as error:
        print(f"cause-pl animate: {error}", file=sys.stderr)
        return 1
    if args.strip:
        write_png_strip(args.strip, animator.key_frames(animator.load_face(args.face), result.au_track))
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.timings.items())
    print(
        f"{result.path}: {result.frames} frames, {result.seconds:.2f} s of audio; "
        f"{result.frames_per_second:.1f} frames/s ({stages})",
        file=sys.stderr,
    )
    return 0
