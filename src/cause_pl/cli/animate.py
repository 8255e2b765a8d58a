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
    no_align: bool = False,
    face_index: int = 0,
    paste_back: bool = False,
) -> int:
    """Animate FACE with the speech in AUDIO into an H.264 + AAC mp4 at 25 fps.

    FACE can be any photo: its largest face (or --face_index N) is found and cropped with the eyes level
    at fixed places, like CelebA's aligned images (--no_align: the photo centre-cropped to a square
    instead), at the generator's size. AUDIO can be any audio or video file of any length.

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
        no_align: centre-crop the photo to a square instead of finding and aligning the face
        face_index: which face to animate, faces sorted by size (0 = the largest)
        paste_back: write the video at the photo's framing, the animated face blended back into it
    """
    from cause_pl.cli.estimate import checked_device
    from cause_pl.faces.align import NoFaceError
    from cause_pl.inference.animator import SpeechToFaceAnimator
    from cause_pl.media.frames import write_png_strip
    from cause_pl.media.image import FaceImageError

    checked_device(device)
    if batch_frames < 1:
        raise UsageError(f"--batch_frames must be >= 1, got {batch_frames}")
    if smoothing < 1 or smoothing % 2 == 0:
        raise UsageError(f"--smoothing must be a positive odd number of frames, got {smoothing}")
    if not math.isfinite(au_scale):
        raise UsageError(f"--au_scale must be a finite number, got {au_scale}")
    if face_index < 0 or (no_align and face_index):
        raise UsageError(f"--face_index must be >= 0 and needs alignment (no --no_align), got {face_index}")
    if paste_back and no_align:
        raise UsageError("--paste_back needs alignment: it cannot be combined with --no_align")
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
    align = not no_align
    try:
        result = animator.animate(
            audio, face, out, progress=True, au_csv=au_csv, align=align, face_index=face_index, paste_back=paste_back
        )
    except NoFaceError as error:
        raise FaceImageError(face, f"{error.problem}; --no_align animates the photo centre-cropped instead") from None
    if strip:
        write_png_strip(strip, animator.key_frames(animator.load_face(face, align, face_index), result.au_track))
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.timings.items())
    print(
        f"{result.path}: {result.frames} frames, {result.seconds:.2f} s of audio; "
        f"{result.frames_per_second:.1f} frames/s ({stages})",
        file=sys.stderr,
    )
    return 0
