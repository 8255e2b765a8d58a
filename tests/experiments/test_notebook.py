"""``experiments/notebooks/inspect.ipynb``: it runs headless on the quick demo and shows real results,
and the committed copy stays small and diffable (no outputs)."""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile
from nbclient import NotebookClient
from PIL import Image, ImageSequence

from cause_pl.au import AU_LABELS
from cause_pl.media.mp4 import video_frame_count
from cause_pl.models.cause import load_cause_checkpoint
from cause_pl.openface.reader import read_openface_csv
from tests.builders.mp4_probe import decode_mp4

NOTEBOOK = Path(__file__).resolve().parents[2] / "experiments" / "notebooks" / "inspect.ipynb"
KERNEL_PROBE = "import sys\nprint(sys.prefix)"
"""Appended to the executed copy: which Python environment the kernel ran in."""


def _tagged(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    matches = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    assert len(matches) == 1, f"expected one cell tagged {tag!r}, found {len(matches)}"
    return matches[0]


def _data(cell: nbformat.NotebookNode, mime: str) -> list[str]:
    return [output["data"][mime] for output in cell.outputs if mime in output.get("data", {})]


@pytest.fixture(scope="module")
def executed(quick_demo, tmp_path_factory):
    """The notebook run by a ``python3`` kernel of this interpreter on the quick demo's folder."""
    from ipykernel.kernelspec import write_kernel_spec

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(KERNEL_PROBE))
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    # A spec whose argv starts with this interpreter, found before any user-level "python3".
    write_kernel_spec(jupyter_path / "kernels" / "python3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAUSE_PL_DEMO", str(quick_demo.out))
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        client = NotebookClient(
            notebook,
            timeout=120,
            startup_timeout=60,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
    return notebook


def test_notebook_runs_in_this_environment_without_errors(executed):
    errors = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == []
    probe = executed.cells[-1]
    assert probe.source == KERNEL_PROBE
    assert "".join(output.get("text", "") for output in probe.outputs).strip() == sys.prefix


def test_au_track_cell_shows_a_figure(executed):
    pngs = _data(_tagged(executed, "au-tracks"), "image/png")
    assert len(pngs) == 1
    figure = Image.open(io.BytesIO(base64.b64decode(pngs[0])))
    assert figure.width > 300 and figure.height > 300


def test_utterance_table_covers_every_au_with_the_demo_error(executed, quick_demo):
    tables = _data(_tagged(executed, "utterance-metrics"), "text/html")
    assert len(tables) == 1
    assert all(f"<td>{label}</td>" in tables[0] for label in AU_LABELS)
    # The mean-over-AUs MAE, recomputed from the demo's own CSVs (3 decimals each).
    mean_row = re.search(r"<td>all</td><td>[^<]*</td><td>([0-9.]+)</td>", tables[0])
    predicted, true = (read_openface_csv(quick_demo.files[name]) for name in ("predicted_aus", "true_aus"))
    expected = np.abs(predicted.aus - true.aus)[true.valid].mean()
    assert mean_row is not None and float(mean_row.group(1)) == pytest.approx(expected, abs=2e-3)


def test_test_split_cell_shows_bar_chart_and_table(executed):
    cell = _tagged(executed, "test-metrics")
    assert len(_data(cell, "image/png")) == 1
    tables = _data(cell, "text/html")
    assert len(tables) == 1 and all(f"<td>{label}</td>" in tables[0] for label in AU_LABELS)


def test_video_is_embedded_and_decodes_to_one_frame_per_au_frame(executed, quick_demo):
    html = "".join(_data(_tagged(executed, "video"), "text/html"))
    embedded = re.search(r'src="data:video/mp4;base64,([A-Za-z0-9+/=\s]+)"', html)
    assert "<video" in html and embedded is not None
    rendered = quick_demo.out / "notebook" / "animation.mp4"
    assert base64.b64decode(embedded.group(1)) == rendered.read_bytes()
    info = soundfile.info(quick_demo.files["speech"])
    fps = load_cause_checkpoint(quick_demo.files["cause_checkpoint"]).frontend_config.fps
    assert len(decode_mp4(rendered).frames) == video_frame_count(info.frames, info.samplerate, fps)


def test_gif_and_frame_strip_are_shown(executed, quick_demo):
    cell = _tagged(executed, "gif")
    assert len(_data(cell, "image/gif")) == 1 and len(_data(cell, "image/png")) == 1
    rendered = decode_mp4(quick_demo.out / "notebook" / "animation.mp4")
    with Image.open(quick_demo.out / "notebook" / "animation.gif") as gif:
        # Pillow merges identical frames but keeps their time; quick utterances fit in the preview.
        milliseconds = sum(frame.info["duration"] for frame in ImageSequence.Iterator(gif))
        assert gif.size == rendered.frames.shape[2:0:-1]
    assert milliseconds == pytest.approx(1000 * len(rendered.frames) / rendered.fps)


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"
