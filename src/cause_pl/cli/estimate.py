"""``cause-pl estimate``: an OpenFace-style AU track (25 fps CSV) for an audio or video file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from cause_pl.cli.command import UsageError, require_file, require_output
from cause_pl.inference.estimate import DEFAULT_CHUNK_FRAMES, estimate_file
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.openface.writer import write_openface_style_csv


def checked_device(device: str) -> torch.device:
    """``--device`` as a torch device; a UsageError for a malformed name or a CUDA device torch cannot see."""
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise UsageError(f"--device: not a torch device: {device!r} ({error})") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: torch sees no CUDA device here")
    return parsed


def estimate(
    audio: Path, *, ckpt: Path, out: str, device: str = "cpu", chunk_frames: int = DEFAULT_CHUNK_FRAMES
) -> int:
    """AU intensities of every frame of AUDIO (wav, flac, ogg, mp3, m4a, mp4, ...; any rate and length).

    Args:
        audio: audio or video file
        ckpt: CAUSE checkpoint (.ckpt)
        out: CSV path, or - for stdout
        device: torch device the model is loaded on and runs on, e.g. cpu or cuda
        chunk_frames: frames per chunk (memory bound)
    """
    checked_device(device)
    if chunk_frames < 1:
        raise UsageError(f"--chunk_frames must be >= 1, got {chunk_frames}")
    require_file(ckpt, "--ckpt")
    require_file(audio, "audio")
    if out != "-":
        require_output(Path(out), "--out")
    model = load_cause_checkpoint(ckpt, map_location=device)
    started = time.perf_counter()
    aus, _ = estimate_file(model, audio, chunk_frames=chunk_frames)
    elapsed = time.perf_counter() - started
    fps = model.frontend_config.fps
    write_openface_style_csv(aus, fps, sys.stdout if out == "-" else Path(out), columns=model.targets.columns)
    seconds = len(aus) / fps
    print(
        f"{audio}: {len(aus)} frames ({seconds:.1f} s) in {elapsed:.2f} s "
        f"(real-time factor {elapsed / max(seconds, 1e-9):.4f})",
        file=sys.stderr,
    )
    return 0
