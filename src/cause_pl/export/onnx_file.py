"""One ONNX file from one ``nn.Module``: the dynamo exporter, the project's metadata, an atomic write.

Every export goes through :func:`export_onnx`: ``torch.onnx.export(dynamo=True)`` (which needs onnxscript)
with named inputs and outputs and ``dynamic_shapes``. The one exception is a graph holding an LSTM over
a dynamic number of frames (the bidirectional CAUSE RNN): ``torch.export`` unrolls ``nn.LSTM`` over
time, which needs a static length (``GuardOnDataDependentSymNode`` in ``unbind``), while the TorchScript
exporter (``dynamo=False``) maps it to ONNX's ``LSTM`` operator with a dynamic sequence axis; such
graphs pass ``legacy_dynamic_axes`` and take that exporter. The graph's doc string and the model's
``metadata_props`` say what the file is and on which scales its inputs are, so the file documents itself
for a reader without cause-pl (:data:`METADATA_KEY` holds a JSON object). The file is written through
:func:`cause_pl.media.atomic.atomic_output`: a failed export leaves no file and an earlier one untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

import cause_pl
from cause_pl.media.atomic import atomic_output

METADATA_KEY = "cause_pl"
"""``metadata_props`` key of the JSON object describing the file (kind, inputs, outputs, version, ...)."""
OPSET_VERSION = 20
"""ONNX opset of every export: torch 2.11's default, the highest both its exporters write (onnxruntime >= 1.17)."""


def export_onnx(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    extra_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    legacy_dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
) -> Path:
    """Export ``module`` (in eval mode) traced on ``example`` to ``path``; returns ``path``.

    ``metadata`` (JSON-able) goes under :data:`METADATA_KEY` together with the cause-pl version and the
    exporter used, and its ``description`` becomes the graph's doc string; ``extra_metadata`` adds further
    JSON entries by key. ``legacy_dynamic_axes`` selects the TorchScript exporter (see the module docstring).
    """
    module = module.eval()
    with torch.no_grad(), _quiet_exporter():
        if legacy_dynamic_axes is not None:
            model = _legacy_export(module, example, input_names, output_names, legacy_dynamic_axes)
            exporter = "torchscript"
        else:
            program = torch.onnx.export(
                module,
                example,
                dynamo=True,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dict(dynamic_shapes) if dynamic_shapes is not None else None,
                opset_version=OPSET_VERSION,
                external_data=False,
                verbose=False,
            )
            if program is None:  # only the TorchScript exporter returns None (it writes to its file argument)
                raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNX program")
            model, exporter = program.model_proto, "dynamo"
    described = {**metadata, "cause_pl_version": cause_pl.__version__, "exporter": f"torch.onnx ({exporter})"}
    model.doc_string = str(described.get("description", ""))
    model.graph.doc_string = model.doc_string
    model.producer_name = "cause-pl"
    model.producer_version = cause_pl.__version__
    entries = {METADATA_KEY: described, **(extra_metadata or {})}
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=json.dumps(value, sort_keys=True))
    return write_model(model, path)


def _legacy_export(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    axes: Mapping[str, Mapping[int, str]],
) -> onnx.ModelProto:
    """``torch.onnx.export(dynamo=False)`` through a scratch folder, as a model proto."""
    with tempfile.TemporaryDirectory(prefix="cause_pl_onnx_") as scratch:
        target = Path(scratch) / "model.onnx"
        torch.onnx.export(
            module,
            example,
            target,
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={name: dict(axis) for name, axis in axes.items()},
            opset_version=OPSET_VERSION,
        )
        return onnx.load_model(str(target))


def write_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Check ``model`` and write it to ``path`` atomically (weights inside the file); returns ``path``."""
    onnx.checker.check_model(model)
    with atomic_output(path) as temporary:
        onnx.save_model(model, str(temporary))
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``path``'s ``metadata_props`` by key, JSON values decoded (other values as text)."""
    model = onnx.load_model(str(path), load_external_data=False)
    return {prop.key: _json_or_text(prop.value) for prop in model.metadata_props}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (missing torchvision ops, axis renames, deprecations) for this export."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
