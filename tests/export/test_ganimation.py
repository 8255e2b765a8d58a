"""The GANimation generator exported to ONNX equals the PyTorch generator, for any batch and image size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import cause_pl
from cause_pl.export.ganimation import INPUT_NAMES, OUTPUT_NAMES, export_ganimation_generator
from cause_pl.export.onnx_file import METADATA_KEY, read_metadata
from cause_pl.export.runtime import onnx_session
from cause_pl.models.ganimation import GANimation

TOLERANCE = 1e-4


def small_ganimation() -> GANimation:
    """A freshly initialised 32-px GANimation (seed 0), its generator in eval mode."""
    torch.manual_seed(0)
    model = GANimation(
        image_size=32, g_base_channels=8, g_res_blocks=1, d_base_channels=8, d_layers=3, d_max_channels=32
    )
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = small_ganimation()
    path = export_ganimation_generator(model, tmp_path_factory.mktemp("onnx") / "generator.onnx")
    return model, path


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 32, 32), (3, 32, 32), (3, 16, 48), (2, 64, 8)])
def test_onnx_generator_equals_the_pytorch_generator(exported, batch, height, width):
    model, path = exported
    session = onnx_session(path)
    generator = torch.Generator().manual_seed(batch * 1000 + height + width)
    image = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    au = torch.rand(batch, model.generator.cond_dim, generator=generator)
    outputs = session.run(list(OUTPUT_NAMES), {"image": image.numpy(), "au": au.numpy()})
    with torch.no_grad():
        expected = model.generator(image, au)
    for name, got, want in zip(OUTPUT_NAMES, outputs, expected, strict=True):
        assert got.shape == tuple(want.shape), name
        assert float(np.abs(got - want.numpy()).max()) < TOLERANCE, name


def test_the_file_says_what_it_is_and_on_which_scales(exported):
    model, path = exported
    session = onnx_session(path)
    assert [value.name for value in session.get_inputs()] == list(INPUT_NAMES)
    assert [value.name for value in session.get_outputs()] == list(OUTPUT_NAMES)
    shapes = {value.name: value.shape for value in session.get_inputs()}
    assert all(isinstance(dim, str) for i, dim in enumerate(shapes["image"]) if i != 1)  # B, H, W dynamic
    info = read_metadata(path)[METADATA_KEY]
    assert info["kind"] == "ganimation_generator" and info["cause_pl_version"] == cause_pl.__version__
    assert info["image_size"] == 32 and info["cond_dim"] == model.generator.cond_dim
    assert "/ 5" in info["inputs"]["au"]["scale"] and "[-1, 1]" in info["inputs"]["image"]["scale"]
    assert "divided by 5" in session.get_modelmeta().description


def test_a_failed_export_leaves_the_earlier_file_untouched(exported, tmp_path, monkeypatch):
    _, path = exported
    target = tmp_path / "generator.onnx"
    target.write_bytes(path.read_bytes())
    before = target.read_bytes()

    def disk_full(model, temporary):
        Path(temporary).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_ganimation_generator(small_ganimation(), target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["generator.onnx"]
