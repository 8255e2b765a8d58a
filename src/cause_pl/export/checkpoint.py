"""``cause-pl export``'s library side: every ONNX file a checkpoint makes, by the class of its weights.

A CAUSE checkpoint makes :data:`OFFLINE_FILE` and, when its net's receptive field is finite,
:data:`STREAMING_FILE` (a bidirectional RNN reads the whole future, so it cannot stream: skipped with
the reason); a GANimation checkpoint makes :data:`GENERATOR_FILE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cause_pl.export.cause import OFFLINE_FILE, STREAMING_FILE, export_cause_offline, export_cause_streaming
from cause_pl.export.ganimation import GENERATOR_FILE, export_ganimation_generator
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.models.checkpoints import STATE_PREFIXES, checkpoint_class, read_checkpoint
from cause_pl.models.ganimation import load_ganimation_checkpoint


@dataclass
class ExportResult:
    """What one export wrote, and what it skipped and why."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    """File not written -> why."""


def export_checkpoint(ckpt: str | Path, out: str | Path) -> ExportResult:
    """Write the ONNX files of the checkpoint ``ckpt`` into the folder ``out`` (made if missing)."""
    ckpt, out = Path(ckpt), Path(out)
    kind = checkpoint_class(read_checkpoint(ckpt))
    result = ExportResult()
    if kind == "GANimation":
        result.written.append(export_ganimation_generator(load_ganimation_checkpoint(ckpt), out / GENERATOR_FILE))
    elif kind == "CAUSERegressor":
        model = load_cause_checkpoint(ckpt)
        result.written.append(export_cause_offline(model, out / OFFLINE_FILE))
        if model.net.receptive_field is None:
            result.skipped[out / STREAMING_FILE] = (
                f"the {model.hparams.arch} net's receptive field is unbounded (it reads the whole future), "
                "so it cannot stream"
            )
        else:
            result.written.append(export_cause_streaming(model, out / STREAMING_FILE))
    else:
        raise ValueError(
            f"{ckpt}: holds an unknown module's weights, expected a {' or '.join(STATE_PREFIXES)} checkpoint"
        )
    return result
