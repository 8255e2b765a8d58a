"""GANimation generator and critic (Pumarola et al., ECCV 2018), as used in CAUSE section 3.4.

Layer for layer the official GANimation model, so that at 128 px and 17 AUs the parameter counts
match it (generator 8,471,296; critic 44,860,352):

* Generator: RGB image + AU vector tiled over H x W -> conv 7x7 -> strided 4x4 downsampling convs
  -> residual blocks -> 4x4 transposed convs -> two 7x7 heads, a colour mask C (tanh) and an
  attention mask A (sigmoid). Output ``A * image + (1 - A) * C``: A = 1 keeps the input pixel.
  Every trunk conv is followed by InstanceNorm(affine) (+ ReLU, except the second conv of a
  residual block), so trunk convs carry no bias; the heads carry none either (official code).
* Critic: strided 4x4 convs with LeakyReLU(0.01) and no normalisation (WGAN-GP penalises input
  gradients per sample, which batch statistics would couple), then two bias-free heads (as in the
  official code): a 3x3 conv giving a real/fake map and a conv spanning the whole final feature
  map giving the AU regression.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from cause_pl.au import NUM_AUS

_RGB_CHANNELS = 3


class GeneratorOutput(NamedTuple):
    """What the generator returns; ``image`` is the composite of the two masks and the input."""

    image: torch.Tensor
    """(B, 3, H, W) edited image in [-1, 1]."""
    attention: torch.Tensor
    """(B, 1, H, W) attention mask in (0, 1); 1 keeps the input pixel."""
    color: torch.Tensor
    """(B, 3, H, W) colour mask in [-1, 1], used where attention is low."""


def _require_positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{owner}: {name} must be >= 1, got {value}")


def _require_divisible(owner: str, image_size: int, levels: int, levels_name: str) -> None:
    factor = 2**levels
    if image_size % factor:
        raise ValueError(f"{owner}: image_size={image_size} must be divisible by 2**{levels_name}={factor}")


def _check_rgb_batch(owner: str, image: torch.Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != _RGB_CHANNELS:
        raise ValueError(f"{owner}: image must have shape (B, {_RGB_CHANNELS}, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{owner}: image must be a floating-point tensor, got {image.dtype}")


def _conv_norm_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(
        conv,
        nn.InstanceNorm2d(channels, affine=True, track_running_stats=False),
        nn.ReLU(inplace=True),
    )


class _ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))) at constant width, as in the official generator."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_norm_relu(nn.Conv2d(channels, channels, 3, padding=1, bias=False), channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True, track_running_stats=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GANimationGenerator(nn.Module):
    """AU-conditioned image editor: ``forward(image, cond)`` -> :class:`GeneratorOutput`.

    Fully convolutional: any H and W divisible by ``2**num_down`` works; ``image_size`` is the
    training resolution, kept for callers and checked for divisibility.
    """

    def __init__(
        self,
        image_size: int = 128,
        cond_dim: int = NUM_AUS,
        base_channels: int = 64,
        num_down: int = 2,
        num_res_blocks: int = 6,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        _require_positive(owner, image_size=image_size, cond_dim=cond_dim, base_channels=base_channels)
        if num_down < 0 or num_res_blocks < 0:
            raise ValueError(f"{owner}: num_down and num_res_blocks must be >= 0, got {num_down} and {num_res_blocks}")
        _require_divisible(owner, image_size, num_down, "num_down")
        self.image_size = image_size
        self.cond_dim = cond_dim
        self.num_down = num_down

        layers: list[nn.Module] = [
            _conv_norm_relu(
                nn.Conv2d(_RGB_CHANNELS + cond_dim, base_channels, 7, padding=3, bias=False),
                base_channels,
            )
        ]
        width = base_channels
        for _ in range(num_down):
            down = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False)
            layers.append(_conv_norm_relu(down, 2 * width))
            width *= 2
        layers.extend(_ResidualBlock(width) for _ in range(num_res_blocks))
        for _ in range(num_down):
            layers.append(
                _conv_norm_relu(
                    nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
                    width // 2,
                )
            )
            width //= 2
        self.trunk = nn.Sequential(*layers)
        self.color_head = nn.Sequential(nn.Conv2d(width, _RGB_CHANNELS, 7, padding=3, bias=False), nn.Tanh())
        self.attention_head = nn.Sequential(nn.Conv2d(width, 1, 7, padding=3, bias=False), nn.Sigmoid())

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> GeneratorOutput:
        """Edit ``image`` (B, 3, H, W) in [-1, 1] towards the condition ``cond`` (B, cond_dim)."""
        self._check_inputs(image, cond)
        first = cast(nn.Sequential, self.trunk[0])  # conv, norm, ReLU
        features = self.trunk[1:](first[1:](self._input_conv(cast(nn.Conv2d, first[0]), image, cond)))
        heads = (cast(nn.Conv2d, head[0]) for head in (self.color_head, self.attention_head))
        head_weight = torch.cat([conv.weight for conv in heads])
        color, attention_logit = F.conv2d(features, head_weight, padding=3).split([_RGB_CHANNELS, 1], dim=1)
        color, attention = torch.tanh(color), torch.sigmoid(attention_logit)
        composite = attention * image + (1 - attention) * color
        return GeneratorOutput(image=composite, attention=attention, color=color)

    def _input_conv(self, conv: nn.Conv2d, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``conv`` over the image with ``cond`` tiled over H x W behind it, without tiling.

        A spatially constant map convolved with zero padding is constant except at the border, so
        the condition's half of the conv is ``cond @ footprint``, where ``footprint`` is each
        (output, condition) kernel slice run once over a ones map: batch-independent work instead of
        ``cond_dim`` channels per image (the costliest conv of the demo's generator).
        """
        height, width = image.shape[-2:]
        image_weight, cond_weight = conv.weight.split([_RGB_CHANNELS, self.cond_dim], dim=1)
        out_channels, _, kernel, _ = cond_weight.shape
        slices = cond_weight.transpose(0, 1).reshape(self.cond_dim * out_channels, 1, kernel, kernel)
        footprint = F.conv2d(image.new_ones(1, 1, height, width), slices, padding=conv.padding)
        cond_part = cond.to(image.dtype) @ footprint.reshape(self.cond_dim, out_channels * height * width)
        image_part = F.conv2d(image, image_weight, padding=conv.padding)
        return image_part + cond_part.view(-1, out_channels, height, width)

    def _check_inputs(self, image: torch.Tensor, cond: torch.Tensor) -> None:
        owner = f"{type(self).__name__}.forward"
        _check_rgb_batch(owner, image)
        factor = 2**self.num_down
        height, width = image.shape[-2:]
        if height % factor or width % factor:
            raise ValueError(
                f"{owner}: image height and width must be divisible by 2**num_down={factor}, got {height}x{width}"
            )
        if cond.shape != (image.shape[0], self.cond_dim):
            raise ValueError(
                f"{owner}: cond must have shape (batch={image.shape[0]}, "
                f"cond_dim={self.cond_dim}), got {tuple(cond.shape)}"
            )


class GANimationCritic(nn.Module):
    """WGAN critic with an AU regression head: ``forward(image)`` -> ``(realness, aus)``.

    ``realness`` is a (B, 1, s, s) map with s = image_size / 2**num_layers (2 at 128 px with six
    layers); ``aus`` is (B, cond_dim). Images must be exactly ``image_size`` square, because the
    AU head's kernel spans the whole final feature map.
    """

    def __init__(
        self,
        image_size: int = 128,
        cond_dim: int = NUM_AUS,
        base_channels: int = 64,
        num_layers: int = 6,
        max_channels: int = 2048,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        _require_positive(
            owner,
            image_size=image_size,
            cond_dim=cond_dim,
            base_channels=base_channels,
            num_layers=num_layers,
            max_channels=max_channels,
        )
        _require_divisible(owner, image_size, num_layers, "num_layers")
        self.image_size = image_size
        self.cond_dim = cond_dim

        layers: list[nn.Module] = []
        in_channels = _RGB_CHANNELS
        for level in range(num_layers):
            out_channels = min(base_channels * 2**level, max_channels)
            layers += [
                nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
                nn.LeakyReLU(0.01),
            ]
            in_channels = out_channels
        self.trunk = nn.Sequential(*layers)
        self.realness_head = nn.Conv2d(in_channels, 1, 3, padding=1, bias=False)
        final_size = image_size // 2**num_layers
        self.au_head = nn.Conv2d(in_channels, cond_dim, final_size, bias=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score ``image`` (B, 3, image_size, image_size): a real/fake map and predicted AUs."""
        owner = f"{type(self).__name__}.forward"
        _check_rgb_batch(owner, image)
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"{owner}: image must be {self.image_size}x{self.image_size} "
                f"(the critic's image_size), got {image.shape[-2]}x{image.shape[-1]}"
            )
        features = self.trunk(image)
        return self.realness_head(features), self.au_head(features).flatten(1)
