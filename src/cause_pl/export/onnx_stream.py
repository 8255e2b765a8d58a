"""A streaming export run by onnxruntime, as the step function :class:`StreamingEstimator` drives.

:func:`onnx_streaming_step` turns a ``cause_streaming.onnx`` file into a function with the signature of
:meth:`cause_pl.inference.streaming.StreamingStep.forward` and the file's :class:`StreamLayout`, so the
same estimator streams with PyTorch or with onnxruntime (:func:`onnx_streaming_estimator`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cause_pl.export.cause import LAYOUT_KEY, STREAM_INPUTS, STREAM_OUTPUTS
from cause_pl.export.onnx_file import read_metadata
from cause_pl.export.runtime import onnx_session
from cause_pl.inference.graphs import StreamLayout
from cause_pl.inference.streaming import StepFunction, StreamingEstimator


def stream_layout(path: str | Path) -> StreamLayout:
    """The :class:`StreamLayout` stored in a streaming file; ValueError naming the file if it has none."""
    stored = read_metadata(path).get(LAYOUT_KEY)
    names = [field.name for field in dataclasses.fields(StreamLayout)]
    if not isinstance(stored, dict) or any(name not in stored for name in names):
        raise ValueError(f"{path}: no streaming layout in its metadata (key {LAYOUT_KEY!r}); not a streaming export")
    return StreamLayout(**{name: stored[name] for name in names})


def onnx_streaming_step(path: str | Path, intra_op_threads: int = 1) -> tuple[StepFunction, StreamLayout]:
    """The streaming file at ``path`` as a step function (same signature as ``StreamingStep.forward``) and its layout.

    The step takes and returns float32 numpy arrays, as :class:`StreamingEstimator` calls it.
    """
    layout = stream_layout(path)
    session = onnx_session(path, intra_op_threads)

    def step(*arrays: np.ndarray) -> list[np.ndarray]:
        feeds = {
            name: np.ascontiguousarray(array, np.float32) for name, array in zip(STREAM_INPUTS, arrays, strict=True)
        }
        return list(session.run(list(STREAM_OUTPUTS), feeds))

    return step, layout


def onnx_streaming_estimator(path: str | Path, intra_op_threads: int = 1) -> StreamingEstimator:
    """A :class:`StreamingEstimator` running the streaming file at ``path`` with onnxruntime."""
    step, layout = onnx_streaming_step(path, intra_op_threads)
    return StreamingEstimator(step, layout, source=path)
