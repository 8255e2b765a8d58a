"""``cause-pl estimate``: an OpenFace-style AU track (25 fps CSV) for an audio or video file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cause_pl.cli.command import UsageError
from cause_pl.inference.estimate import DEFAULT_CHUNK_FRAMES, estimate_file
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.openface.writer import write_openface_style_csv


def estimate(
    audio: Path, *, ckpt: Path, out: str, device: str = "cpu", chunk_frames: int = DEFAULT_CHUNK_FRAMES
) -> int:
    """AU intensities of every frame of AUDIO (wav, flac, ogg, mp3, m4a, mp4, ...; any rate and length).

    Args:
        audio: audio or video file
        ckpt: CAUSE checkpoint (.ckpt)
        out: CSV path, or - for stdout
        device: torch device, e.g. cpu or cuda
        chunk_frames: frames per chunk (memory bound)
    """
    if not ckpt.is_file():
        raise UsageError(f"checkpoint not found: {ckpt}")
    model = load_cause_checkpoint(ckpt, map_location=device)
    started = time.perf_counter()
    aus, _ = estimate_file(model, audio, chunk_frames=chunk_frames, device=device)
    elapsed = time.perf_counter() - started
    fps = model.frontend_config.fps
    write_openface_style_csv(aus, fps, sys.stdout if out == "-" else Path(out))
    seconds = len(aus) / fps
    print(
        f"{audio}: {len(aus)} frames ({seconds:.1f} s) in {elapsed:.2f} s "
        f"(real-time factor {elapsed / max(seconds, 1e-9):.4f})",
        file=sys.stderr,
    )
    return 0
