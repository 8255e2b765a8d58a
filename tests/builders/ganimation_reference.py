"""GANimation's generator as the paper defines it, for checks and the benchmark's "before" row: the
condition tiled over H x W behind the image, one trunk conv over all 3 + cond_dim channels, and the
colour and attention heads as two convs (what :class:`GANimationGenerator` computes more cheaply)."""

from __future__ import annotations

import torch

from cause_pl.nets.ganimation import GANimationGenerator, GeneratorOutput


def tiled_forward(generator: GANimationGenerator, image: torch.Tensor, cond: torch.Tensor) -> GeneratorOutput:
    """``generator``'s output computed the tiled way, with its own weights."""
    batch, _, height, width = image.shape
    tiled = cond.to(image.dtype)[:, :, None, None].expand(batch, generator.cond_dim, height, width)
    features = generator.trunk(torch.cat([image, tiled], dim=1))
    color, attention = generator.color_head(features), generator.attention_head(features)
    return GeneratorOutput(image=attention * image + (1 - attention) * color, attention=attention, color=color)
