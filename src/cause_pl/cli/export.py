"""``cause-pl export``: a checkpoint's models as ONNX files, for onnxruntime and other runtimes."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

from cause_pl.cli.command import require_file
from cause_pl.export.checkpoint import export_checkpoint


def export(*, ckpt: Path, out: Path) -> int:
    """ONNX files of a checkpoint: CAUSE offline and streaming, or the GANimation generator.

    A CAUSE checkpoint writes OUT/cause_offline.onnx (waveform -> AUs) and, for nets with a finite
    receptive field (every arch but rnn), OUT/cause_streaming.onnx (one hop of PCM in, one frame out);
    a GANimation checkpoint writes OUT/ganimation_generator.onnx. Each file's metadata says what it
    is and on which scales its inputs are.

    Args:
        ckpt: CAUSE or GANimation checkpoint (.ckpt)
        out: folder the .onnx files are written to (made if missing)
    """
    require_file(ckpt, "--ckpt")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "--out: not a folder", str(out))
    result = export_checkpoint(ckpt, out)
    for path in result.written:
        print(f"{path}: {_size(path.stat().st_size)}", file=sys.stderr)
    for path, reason in result.skipped.items():
        print(f"{path}: not written: {reason}", file=sys.stderr)
    return 0


def _size(size: int) -> str:
    """``size`` bytes for people: ``812 B``, ``40.2 kB``, ``33.9 MB``."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"
