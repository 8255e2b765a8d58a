"""Stand-ins for the nets of three public GANimation implementations, written from the facts about their
state-dict layouts (key names, biases, norm types, head names, forward output order), to test the importer
without downloading anything. Each saves its weights the way its project does (:func:`save_source`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

SOURCES = ("official", "replicate", "vipermu")
Norm = Callable[[int], nn.Module]
M = TypeVar("M", bound=nn.Module)


def affine_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


def plain_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels)


def tracking_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)


class Residual(nn.Module):
    """``x + body(x)``, the body under the attribute name its project uses (``main`` or ``conv_block``)."""

    def __init__(self, channels: int, bias: bool, norm: Norm, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute
        body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm(channels),
        )
        setattr(self, attribute, body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + getattr(self, self.attribute)(x)


def generator_trunk(cond_dim: int, base: int, blocks: int, bias: bool, norm: Norm, block_attr: str) -> nn.Sequential:
    """conv 7x7, two stride-2 convs, residual blocks, two transposed convs; each conv + norm + ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(3 + cond_dim, base, 7, padding=3, bias=bias),
        norm(base),
        nn.ReLU(inplace=True),
    ]
    width = base
    for _ in range(2):
        layers += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=bias), norm(2 * width), nn.ReLU(inplace=True)]
        width *= 2
    layers += [Residual(width, bias, norm, block_attr) for _ in range(blocks)]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=bias), norm(width // 2), nn.ReLU(inplace=True)]
        width //= 2
    return nn.Sequential(*layers)


def head(width: int, channels: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, channels, 7, padding=3, bias=False), activation)


def tiled_input(image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    tiled = cond[:, :, None, None].expand(-1, -1, *image.shape[-2:])
    return torch.cat([image, tiled], dim=1)


class OfficialGenerator(nn.Module):
    """albertpumarola/GANimation: bias-free convs, affine norms; forward -> (colour, attention)."""

    def __init__(self, cond_dim: int = 17, base: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.main = generator_trunk(cond_dim, base, blocks, False, affine_norm, "main")
        self.img_reg = head(base, 3, nn.Tanh())
        self.attetion_reg = head(base, 1, nn.Sigmoid())

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.main(tiled_input(image, cond))
        return self.img_reg(features), self.attetion_reg(features)


class ReplicateGenerator(nn.Module):
    """ganimation_replicate: biased trunk convs, non-affine norms; forward -> (colour, attention, embedding)."""

    def __init__(self, cond_dim: int = 17, base: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.model = generator_trunk(cond_dim, base, blocks, True, plain_norm, "conv_block")
        self.color_top = head(base, 3, nn.Tanh())
        self.au_top = head(base, 1, nn.Sigmoid())

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embedding = self.model(tiled_input(image, cond))
        return self.color_top(embedding), self.au_top(embedding), embedding


class VipermuGenerator(nn.Module):
    """vipermu/ganimation: affine norms tracking statistics, ``debug*`` aliases; forward -> (attention, colour).

    Run in train mode, as its project does: each image normalised by its own statistics.
    """

    def __init__(self, cond_dim: int = 17, base: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.main = generator_trunk(cond_dim, base, blocks, False, tracking_norm, "main")
        self.debug1 = self.main[0:3]
        self.debug2 = self.main[3:6]
        self.debug3 = self.main[6:9]
        self.debug4 = self.main[9:]
        self.im_reg = head(base, 3, nn.Tanh())
        self.im_att = head(base, 1, nn.Sigmoid())

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.main(tiled_input(image, cond))
        return self.im_att(features), self.im_reg(features)


class SourceCritic(nn.Module):
    """The critic of all three: stride-2 convs with bias + LeakyReLU(0.01), a 3x3 real/fake head and an AU
    head spanning the final map; the attribute names its project uses; forward -> (realness, aus)."""

    def __init__(
        self, names: tuple[str, str, str], image_size: int = 128, cond_dim: int = 17, base: int = 64, layers: int = 6
    ) -> None:
        super().__init__()
        self.names = names
        convs: list[nn.Module] = []
        width, in_channels = base, 3
        for _ in range(layers):
            convs += [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.01)]
            in_channels, width = width, 2 * width
        trunk, realness, aus = names
        setattr(self, trunk, nn.Sequential(*convs))
        setattr(self, realness, nn.Conv2d(in_channels, 1, 3, 1, 1, bias=False))
        setattr(self, aus, nn.Conv2d(in_channels, cond_dim, image_size // 2**layers, bias=False))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trunk, realness, aus = (getattr(self, name) for name in self.names)
        features = trunk(image)
        return realness(features), aus(features).flatten(1)


CRITIC_NAMES = {
    "official": ("main", "conv1", "conv2"),
    "replicate": ("model", "dis_top", "aus_top"),
    "vipermu": ("main", "conv1", "conv2"),
}
GENERATORS: dict[str, type[OfficialGenerator | ReplicateGenerator | VipermuGenerator]] = {
    "official": OfficialGenerator,
    "replicate": ReplicateGenerator,
    "vipermu": VipermuGenerator,
}


def source_generator(layout: str, seed: int = 0, **sizes: int) -> nn.Module:
    """A ``layout`` generator with random weights, norm affines and biases (so that a mix-up shows)."""
    torch.manual_seed(seed)
    return randomised(GENERATORS[layout](**sizes))


def source_critic(layout: str, seed: int = 0, **sizes: int) -> SourceCritic:
    torch.manual_seed(seed + 1)
    return randomised(SourceCritic(CRITIC_NAMES[layout], **sizes))


def randomised(module: M) -> M:
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("bias"):
                parameter.uniform_(-0.5, 0.5)
            elif parameter.dim() == 1:  # a norm's scale
                parameter.uniform_(0.5, 1.5)
        for name, buffer in module.named_buffers():  # statistics the sources never use at inference
            if name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 3.0)
    return module


def composite(image: torch.Tensor, attention: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """``A * image + (1 - A) * colour``, A = 1 keeping the input pixel, as all three compose."""
    return attention * image + (1 - attention) * color


def source_outputs(layout: str, net: nn.Module, image: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
    """The source generator's (image, attention, color), from its own output order."""
    net.train(layout == "vipermu")  # vipermu never switches to eval mode: per-image statistics
    outputs = net(image, cond)
    attention, color = (outputs[0], outputs[1]) if layout == "vipermu" else (outputs[1], outputs[0])
    return {"image": composite(image, attention, color), "attention": attention, "color": color}


def save_source(layout: str, net: nn.Module, path: Path) -> Path:
    """Save ``net``'s weights as its project does, in the pre-1.6 (non-zip) format those PyTorch versions wrote.

    official: from ``DataParallel`` (``module.`` keys) with PyTorch 0.3's InstanceNorm ``running_mean`` and
    ``running_var``; replicate: the plain state dict; vipermu: the state dict as it is (running statistics,
    ``num_batches_tracked``, ``debug*`` aliases).
    """
    state = dict(net.state_dict())
    if layout == "official":
        for name, module in net.named_modules():
            if isinstance(module, nn.InstanceNorm2d):
                state[f"{name}.running_mean"] = torch.rand(module.num_features)
                state[f"{name}.running_var"] = torch.rand(module.num_features) + 0.5
        state = {f"module.{key}": value for key, value in state.items()}
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path
