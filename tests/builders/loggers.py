"""A Lightning logger that records what a TensorBoard SummaryWriter would receive (tensorboard is not installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning.loggers import Logger


class SummaryWriterRecorder:
    """Records the ``add_text``, ``add_figure`` and ``add_image`` calls a SummaryWriter receives."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str, int]] = []
        self.figures: list[tuple[str, Any, int]] = []
        self.images: list[tuple[str, np.ndarray, int, str]] = []

    def add_text(self, tag: str, text: str, global_step: int) -> None:
        self.texts.append((tag, text, global_step))

    def add_figure(self, tag: str, figure: Any, global_step: int, close: bool) -> None:
        self.figures.append((tag, figure, global_step))

    def add_image(self, tag: str, image: np.ndarray, global_step: int, dataformats: str) -> None:
        self.images.append((tag, np.array(image), global_step, dataformats))


class RecordingLogger(Logger):
    """A logger whose ``experiment`` is a :class:`SummaryWriterRecorder`; metrics are dropped."""

    name, version = "recording", 0

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.writer, self.root = SummaryWriterRecorder(), root

    @property
    def experiment(self) -> SummaryWriterRecorder:
        return self.writer

    @property
    def save_dir(self) -> str:
        return str(self.root)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass
