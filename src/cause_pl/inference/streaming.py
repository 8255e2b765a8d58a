"""Live AU estimation: PCM chunks of any length in, each AU frame out as soon as it is determined.

``StreamingEstimator`` buffers the incoming samples into hops and drives a streaming step (the
PyTorch :class:`cause_pl.inference.graphs.StreamingStep`, or the same step exported to ONNX and
run by onnxruntime) one hop at a time; ``finish`` flushes the frames the signal's end determines.
The frames equal :func:`cause_pl.inference.estimate.estimate_aus` of the whole signal up to float
round-off, whatever the chunking, for every net with a finite receptive field. Memory is the
step's state plus less than one hop of samples.

Timing: frame ``i`` (timestamp ``i / fps``) is emitted by the push that delivers sample
``i * hop + reach + lookahead * hop - 1`` of the signal, i.e. ``latency_ms`` of audio after its
timestamp (the part of the mel window after the frame's centre plus the net's look-ahead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from cause_pl.inference.graphs import StreamingStep, StreamLayout
from cause_pl.models.cause import CAUSERegressor

StepFunction = Callable[..., Sequence[np.ndarray]]
"""``step(chunk, samples, mel, valid, frame_valid) -> (aus, emitted_valid, samples, mel, valid)`` on float32 arrays."""


def torch_step_function(step: StreamingStep) -> StepFunction:
    """``step`` as a function of numpy arrays, run without autograd."""
    step.eval()

    def run(*arrays: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            outputs = step(*(torch.from_numpy(array) for array in arrays))
        return [output.numpy() for output in outputs]

    return run


class StreamingEstimator:
    """Feed PCM with ``push`` (1-D float, the layout's sample rate, any length), then call ``finish`` once.

    Both return the newly determined AU frames as a ``(k, num_outputs)`` float32 array (``k`` may
    be 0); ``frames_emitted`` counts the frames returned so far, so the next one has timestamp
    ``frames_emitted / fps``.
    """

    def __init__(self, step: StepFunction, layout: StreamLayout, source: str | Path | None = None) -> None:
        self.step, self.layout, self.source = step, layout, source
        self._buffer = np.zeros(layout.prefix_samples, dtype=np.float32)  # the centred first frame's zero padding
        self._samples: np.ndarray | None = None
        self._mel = np.zeros((layout.state_frames, layout.n_mels), dtype=np.float32)
        self._valid = np.zeros(layout.state_frames, dtype=np.float32)
        self.samples_received = 0
        self.frames_in = 0
        self.frames_emitted = 0
        self.finished = False

    @classmethod
    def for_model(cls, model: CAUSERegressor, source: str | Path | None = None) -> StreamingEstimator:
        """An estimator running a CPU copy of ``model`` (the model itself is not moved or changed)."""
        step = StreamingStep(model)
        return cls(torch_step_function(step), step.layout, source)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency in milliseconds (see the module docstring)."""
        return self.layout.latency_ms

    def push(self, pcm: np.ndarray | torch.Tensor) -> np.ndarray:
        """Add samples; return the frames they determine."""
        self._check_open()
        block = np.asarray(pcm.detach().cpu() if isinstance(pcm, torch.Tensor) else pcm)
        if block.ndim != 1 or block.dtype.kind != "f":
            raise ValueError(f"StreamingEstimator.push: PCM must be 1-D floats, got {block.dtype} {block.shape}")
        if not np.isfinite(block).all():
            raise ValueError(f"StreamingEstimator.push: non-finite samples in {self._name()}")
        self.samples_received += block.shape[0]
        self._buffer = np.concatenate([self._buffer, block.astype(np.float32, copy=False)])
        hop = self.layout.hop
        rows: list[np.ndarray] = []
        while self._ready() and self._buffer.shape[0] >= hop:
            rows += self._advance(self._take(hop), frame_valid=True)
        return self._rows(rows)

    def finish(self) -> np.ndarray:
        """End of the signal: return its remaining frames (zero padding and look-ahead flush)."""
        self._check_open()
        self.finished = True
        if self.samples_received == 0:
            raise ValueError(f"StreamingEstimator: {self._name()} ended before its first sample")
        total = 1 + self.samples_received // self.layout.hop
        self._ready(pad=True)
        rows: list[np.ndarray] = []
        while self.frames_emitted + len(rows) < total:
            rows += self._advance(self._take(self.layout.hop), frame_valid=self.frames_in < total)
        return self._rows(rows)

    def _ready(self, pad: bool = False) -> bool:
        """Whether the sample state holds its first ``carry_samples`` padded samples (zero-padded if ``pad``)."""
        if self._samples is None:
            needed = self.layout.carry_samples
            if self._buffer.shape[0] < needed and not pad:
                return False
            self._samples = self._take(needed)
        return True

    def _take(self, count: int) -> np.ndarray:
        """The next ``count`` buffered samples, zero-filled past the end of what arrived."""
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken if taken.shape[0] == count else np.pad(taken, (0, count - taken.shape[0]))

    def _advance(self, chunk: np.ndarray, frame_valid: bool) -> list[np.ndarray]:
        flag = np.array([1.0 if frame_valid else 0.0], dtype=np.float32)
        aus, emitted, self._samples, self._mel, self._valid = self.step(
            chunk, self._samples, self._mel, self._valid, flag
        )
        self.frames_in += int(frame_valid)
        return [aus[0]] if emitted[0] > 0.5 else []

    def _rows(self, rows: list[np.ndarray]) -> np.ndarray:
        out = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.layout.num_outputs), np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"the model produced non-finite AUs for {self._name()}; check the checkpoint")
        self.frames_emitted += out.shape[0]
        return out

    def _check_open(self) -> None:
        if self.finished:
            raise ValueError("StreamingEstimator: the stream is finished; make a new estimator for a new signal")

    def _name(self) -> str:
        return str(self.source) if self.source is not None else "this stream"
