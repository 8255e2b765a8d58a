"""The GANimation generator as ONNX: ``image`` (B, 3, H, W) in [-1, 1] and ``au`` (B, cond_dim) on the /5 scale.

Outputs ``image_out`` (the edited image; ONNX names must differ from the input ``image``), ``attention``
and ``color``, as :class:`cause_pl.nets.ganimation.GeneratorOutput`. The batch is dynamic, and so are H
and W: any multiple of ``2**num_down`` (4 for the official model), like the PyTorch generator.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from cause_pl.export.onnx_file import export_onnx
from cause_pl.models.ganimation import GANimation
from cause_pl.nets.ganimation import GANimationGenerator

GENERATOR_FILE = "ganimation_generator.onnx"
INPUT_NAMES = ("image", "au")
OUTPUT_NAMES = ("image_out", "attention", "color")


class GeneratorGraph(nn.Module):
    """The generator with a tuple output, the form the exporter names output by output."""

    def __init__(self, generator: GANimationGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, au: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output = self.generator(image, au)
        return output.image, output.attention, output.color


def export_ganimation_generator(model: GANimation | GANimationGenerator, path: str | Path) -> Path:
    """Write ``model``'s generator to ``path`` as ONNX (dynamic batch, height and width); returns ``path``."""
    generator = copy.deepcopy(model.generator if isinstance(model, GANimation) else model).cpu().float().eval()
    size, cond_dim, factor = generator.image_size, generator.cond_dim, 2**generator.num_down
    example = (torch.zeros(2, 3, size, size), torch.zeros(2, cond_dim))
    batch = Dim("batch", min=1)
    height = factor * Dim("height_blocks", min=1)
    width = factor * Dim("width_blocks", min=1)
    metadata = {
        "kind": "ganimation_generator",
        "description": (
            "GANimation generator (cause-pl): edits a face image towards an AU vector. "
            f"Inputs: image float32 (B, 3, H, W) RGB in [-1, 1], H and W multiples of {factor} "
            f"(trained at {size}x{size}); au float32 (B, {cond_dim}) AU intensities divided by 5 (0..1). "
            "Outputs: image_out (B, 3, H, W) in [-1, 1] = attention * image + (1 - attention) * color; "
            "attention (B, 1, H, W) in (0, 1), 1 keeps the input pixel; color (B, 3, H, W) in [-1, 1]."
        ),
        "inputs": {
            "image": {"shape": ["B", 3, "H", "W"], "scale": "RGB in [-1, 1]", "multiple_of": factor},
            "au": {"shape": ["B", cond_dim], "scale": "AU intensity / 5 (0..1)"},
        },
        "outputs": {
            "image_out": "edited image, RGB in [-1, 1]",
            "attention": "attention mask in (0, 1); 1 keeps the input pixel",
            "color": "colour mask in [-1, 1]",
        },
        "image_size": size,
        "cond_dim": cond_dim,
    }
    return export_onnx(
        GeneratorGraph(generator),
        example,
        path,
        input_names=INPUT_NAMES,
        output_names=OUTPUT_NAMES,
        dynamic_shapes={"image": {0: batch, 2: height, 3: width}, "au": {0: batch}},
        metadata=metadata,
    )
