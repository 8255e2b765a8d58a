"""Exported files opened with onnxruntime: :func:`onnx_session`, on the CPU, one intra-op thread by default.

A streaming step is a few small matrix products: more threads cost more in hand-over than they save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime  # type: ignore[import-untyped]

_LOAD_ERRORS = (
    onnxruntime.capi.onnxruntime_pybind11_state.InvalidProtobuf,
    onnxruntime.capi.onnxruntime_pybind11_state.Fail,
)


def onnx_session(path: str | Path, intra_op_threads: int = 1) -> Any:
    """An onnxruntime ``InferenceSession`` of ``path`` on the CPU; ValueError naming the file if it is no ONNX model."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except _LOAD_ERRORS as error:
        raise ValueError(f"{path}: not an ONNX model onnxruntime can load ({' '.join(str(error).split())})") from error
