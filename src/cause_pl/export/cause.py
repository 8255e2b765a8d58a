"""CAUSE as ONNX: the whole-signal estimator (``wave`` -> ``aus``) and the streaming step.

Both files take raw PCM at the model's sample rate (float32, full scale [-1, 1]) and hold the mel
frontend, the normalisation, the net and the clamp to 0..5 (:mod:`cause_pl.inference.graphs`).
The offline file's ``samples`` axis is dynamic (any length >= 1 sample); the streaming file has fixed
shapes, its :class:`~cause_pl.inference.graphs.StreamLayout` stored as JSON under
:data:`LAYOUT_KEY`, which is all a driver needs (``experiments/onnx/stream_with_onnxruntime.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import Dim

from cause_pl.export.onnx_file import export_onnx
from cause_pl.inference.graphs import OfflineAUModel, StreamingStep
from cause_pl.models.cause import CAUSERegressor

OFFLINE_FILE = "cause_offline.onnx"
STREAMING_FILE = "cause_streaming.onnx"
LAYOUT_KEY = "layout"
"""``metadata_props`` key of the streaming file's layout (``StreamLayout.to_dict()``, JSON)."""
STREAM_INPUTS = ("chunk", "samples", "mel", "valid", "frame_valid")
STREAM_OUTPUTS = ("aus", "emitted_valid", "samples_out", "mel_out", "valid_out")
_LEGACY_AXES = {"wave": {0: "samples"}, "aus": {0: "frames"}}
"""The offline file's dynamic axes for the TorchScript exporter (recurrent nets only, see :mod:`.onnx_file`)."""
EXAMPLE_SECONDS = 2
"""Length of the waveform the offline graph is traced on (any length runs)."""


def export_cause_offline(model: CAUSERegressor, path: str | Path) -> Path:
    """Write ``model`` as ``wave (samples,) -> aus (frames, num_outputs)`` ONNX to ``path``; returns ``path``."""
    graph = OfflineAUModel(model).cpu().eval()
    config = model.frontend_config
    example = torch.zeros(EXAMPLE_SECONDS * config.sample_rate)
    metadata = {
        **_common_metadata(model),
        "kind": "cause_offline",
        "description": (
            f"CAUSE (cause-pl, arch {model.hparams.arch}): speech -> facial action-unit intensities. "
            f"Input: wave float32 (samples,) mono PCM at {config.sample_rate} Hz, full scale [-1, 1], "
            f"any length >= 1. Output: aus float32 (frames, {model.hparams.num_aus}), "
            f"frames = 1 + samples // {config.hop_length}; row i is the face at i / {config.fps} s, "
            "intensities on OpenFace's 0..5 scale (clamped)."
        ),
        "inputs": {"wave": {"shape": ["samples"], "scale": "mono PCM, full scale [-1, 1]"}},
        "outputs": {"aus": {"shape": ["frames", model.hparams.num_aus], "scale": "AU intensity 0..5"}},
    }
    return export_onnx(
        graph,
        (example,),
        path,
        input_names=("wave",),
        output_names=("aus",),
        dynamic_shapes={"wave": {0: Dim("samples", min=1)}},
        metadata=metadata,
        legacy_dynamic_axes=_LEGACY_AXES if _has_lstm(graph) else None,
    )


def export_cause_streaming(model: CAUSERegressor, path: str | Path) -> Path:
    """Write ``model``'s streaming step (fixed shapes, one hop in) as ONNX to ``path``; returns ``path``."""
    step = StreamingStep(model).cpu().eval()
    layout = step.layout
    samples, mel, valid = step.initial_state()
    example = (torch.zeros(layout.hop), samples, mel, valid, torch.ones(1))
    metadata = {
        **_common_metadata(model),
        "kind": "cause_streaming",
        "description": (
            f"CAUSE streaming step (cause-pl, arch {model.hparams.arch}): one hop of {layout.hop} samples "
            f"(mono PCM at {layout.sample_rate} Hz, full scale [-1, 1]) and the state in, at most one frame "
            f"of {layout.num_outputs} AU intensities (0..5) and the next state out. Inputs: chunk ({layout.hop},), "
            f"samples ({layout.carry_samples},), mel {tuple(mel.shape)}, valid ({mel.shape[0]},), "
            "frame_valid (1,) = 1 for a hop of the signal, 0 for the flush steps after its end. Outputs: "
            "aus (1, num_outputs), emitted_valid (1,) = 1 when aus is a frame of the signal, samples_out, "
            "mel_out, valid_out (the next state). Prefix the signal with prefix_samples zeros; the first state is "
            "samples = the first carry_samples samples of that, mel and valid zeros; every later hop is one step; "
            "after the end, zero hops with frame_valid 0 until every frame came out. The layout (JSON) is under "
            f"metadata key '{LAYOUT_KEY}'."
        ),
        "inputs": {
            "chunk": {"shape": [layout.hop], "scale": "mono PCM, full scale [-1, 1]"},
            "frame_valid": {"shape": [1], "scale": "1 while the hop is signal, 0 while flushing"},
            "samples, mel, valid": "state: the previous step's samples_out, mel_out, valid_out",
        },
        "outputs": {"aus": {"shape": [1, layout.num_outputs], "scale": "AU intensity 0..5"}},
    }
    return export_onnx(
        step,
        example,
        path,
        input_names=STREAM_INPUTS,
        output_names=STREAM_OUTPUTS,
        dynamic_shapes=None,
        metadata=metadata,
        extra_metadata={LAYOUT_KEY: layout.to_dict()},
    )


def _has_lstm(module: nn.Module) -> bool:
    """Whether ``module`` holds a recurrent layer, which the dynamo exporter cannot run over a dynamic length."""
    return any(isinstance(layer, nn.RNNBase) for layer in module.modules())


def _common_metadata(model: CAUSERegressor) -> dict[str, Any]:
    """What both CAUSE files record: the architecture, the frontend and the output columns."""
    num_aus = model.hparams.num_aus
    return {
        "arch": model.hparams.arch,
        "frontend": model.frontend_config.to_dict(),
        "sample_rate": model.frontend_config.sample_rate,
        "fps": model.frontend_config.fps,
        "num_outputs": num_aus,
        "au_columns": list(model.targets.columns),
    }
