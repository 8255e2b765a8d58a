"""``cause-pl animate``: a still face animated by speech, written as an mp4 with the speech as sound."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from cause_pl.cli.command import UsageError, require_file, require_output


def animate(
    *,
    audio: Path,
    face: Path,
    cause_ckpt: Path,
    ganimation_ckpt: Path,
    out: Path,
    au_csv: Path | None = None,
    strip: Path | None = None,
    au_scale: float = 1.0,
    smoothing: int = 1,
    batch_frames: int = 32,
    device: str = "cpu",
    bf16: bool = False,
) -> int:
    """Animate FACE with the speech in AUDIO into an H.264 + AAC mp4 at 25 fps.

    FACE can be any image (centre-cropped to a square and resized to the generator's size), AUDIO any
    audio or video file of any length.

    Args:
        audio: speech: wav, flac, mp3, m4a, mp4, ...
        face: face image: png, jpg, webp, ...
        cause_ckpt: CAUSE checkpoint
        ganimation_ckpt: GANimation checkpoint
        out: output mp4
        au_csv: also save the AU track driving the frames (OpenFace-style CSV)
        strip: also save a PNG strip of 8 frames
        au_scale: multiply AU intensities (0 = still face)
        smoothing: moving-average window in frames (odd; 1 = none)
        batch_frames: frames generated per batch
        device: torch device both nets are loaded on and run on, e.g. cpu or cuda
        bf16: generate under bf16 autocast on that device (GPUs, CPUs with native bf16)
    """
    from cause_pl.cli.estimate import checked_device
    from cause_pl.inference.animator import SpeechToFaceAnimator
    from cause_pl.media.frames import write_png_strip

    checked_device(device)
    if batch_frames < 1:
        raise UsageError(f"--batch_frames must be >= 1, got {batch_frames}")
    if smoothing < 1 or smoothing % 2 == 0:
        raise UsageError(f"--smoothing must be a positive odd number of frames, got {smoothing}")
    if not math.isfinite(au_scale):
        raise UsageError(f"--au_scale must be a finite number, got {au_scale}")
    for flag, path in (
        ("--cause_ckpt", cause_ckpt),
        ("--ganimation_ckpt", ganimation_ckpt),
        ("--audio", audio),
        ("--face", face),
    ):
        require_file(path, flag)
    for flag, output in (("--out", out), ("--au_csv", au_csv), ("--strip", strip)):
        if output is not None:  # fail before loading anything when an output cannot be written
            require_output(output, flag)
    animator = SpeechToFaceAnimator.from_checkpoints(
        cause_ckpt,
        ganimation_ckpt,
        map_location=device,
        au_scale=au_scale,
        smoothing_frames=smoothing,
        frames_per_batch=batch_frames,
        bf16=bf16,
    )
    result = animator.animate(audio, face, out, progress=True, au_csv=au_csv)
    if strip:
        write_png_strip(strip, animator.key_frames(animator.load_face(face), result.au_track))
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.timings.items())
    print(
        f"{result.path}: {result.frames} frames, {result.seconds:.2f} s of audio; "
        f"{result.frames_per_second:.1f} frames/s ({stages})",
        file=sys.stderr,
    )
    return 0
