"""``cause-pl estimate``: an OpenFace-style AU track (25 fps CSV) for an audio or video file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cause_pl.inference.estimate import DEFAULT_CHUNK_FRAMES, estimate_file
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.openface.writer import write_openface_style_csv


def estimate(argv: Sequence[str]) -> int:
    """AU intensities of every frame of AUDIO (wav, flac, ogg, mp3, m4a, mp4, ...; any rate and length)."""
    parser = argparse.ArgumentParser(prog="cause-pl estimate", description=estimate.__doc__)
    parser.add_argument("audio", type=Path, help="audio or video file")
    parser.add_argument("--ckpt", required=True, type=Path, help="CAUSE checkpoint (.ckpt)")
    parser.add_argument("--out", required=True, help="CSV path, or - for stdout")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, help="frames per chunk (memory bound)"
    )
    args = parser.parse_args(argv)
    if not args.ckpt.is_file():
        parser.error(f"checkpoint not found: {args.ckpt}")
    model = load_cause_checkpoint(args.ckpt, map_location=args.device)
    started = time.perf_counter()
    aus, _ = estimate_file(model, args.audio, chunk_frames=args.chunk_frames, device=args.device)
    elapsed = time.perf_counter() - started
    fps = model.frontend_config.fps
    write_openface_style_csv(aus, fps, sys.stdout if args.out == "-" else Path(args.out))
    seconds = len(aus) / fps
    print(
        f"{args.audio}: {len(aus)} frames ({seconds:.1f} s) in {elapsed:.2f} s "
        f"(real-time factor {elapsed / max(seconds, 1e-9):.4f})",
        file=sys.stderr,
    )
    return 0
