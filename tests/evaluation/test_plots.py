"""Figure files: written whole or not at all (the previous file survives a failed write)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from cause_pl.evaluation.plots import figure_to_png, save_figure, write_png


def line_figure(slope: float) -> Figure:
    figure = Figure(figsize=(2, 1.5))
    FigureCanvasAgg(figure)
    figure.add_subplot().plot(np.arange(5), slope * np.arange(5))
    return figure


def test_save_figure_writes_a_png_into_new_folders(tmp_path):
    path = save_figure(line_figure(1.0), tmp_path / "plots" / "line.png", dpi=50)
    assert path == tmp_path / "plots" / "line.png"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (100, 75)
    assert sorted(p.name for p in path.parent.iterdir()) == ["line.png"]


def test_failed_figure_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_figure(line_figure(1.0), tmp_path / "line.png", dpi=50)
    previous = path.read_bytes()
    new_png = figure_to_png(line_figure(-2.0), dpi=50)
    assert new_png != previous
    real_write_bytes = Path.write_bytes

    def half_then_disk_full(self: Path, data: bytes) -> int:
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_png(new_png, path)
    with pytest.raises(OSError, match="No space left"):
        save_figure(line_figure(-2.0), path, dpi=50)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.png"]
