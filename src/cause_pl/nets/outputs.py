"""How a CAUSE net's raw outputs become targets, and the loss that fits each kind (:mod:`cause_pl.targets`).

- intensities (AUs, blendshapes): L1 on valid frames (the paper's eq. 2), outputs clamped to the range;
- distributions (emotion classes): KL divergence from the target distribution to the softmax of the
  outputs on valid frames, outputs mapped by softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cause_pl.targets import TargetSpec


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Paper eq. 2 on valid frames: sum |target - pred| / (valid frames * targets); 0 if none is valid.

    Invalid frames (masked out) contribute neither value nor gradient, whatever they hold (NaN too).
    """
    valid = mask.unsqueeze(-1)
    error = (pred - target.masked_fill(~valid, 0.0)).abs()
    total = torch.where(valid, error, 0.0).sum()
    return total / (mask.sum() * pred.shape[-1]).clamp_min(1)


def masked_kl(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean over valid frames of KL(target || softmax(pred)) in nats; 0 if none is valid.

    ``target`` rows are distributions (zeros allowed: 0 log 0 = 0); invalid frames contribute
    neither value nor gradient, whatever they hold.
    """
    valid = mask.unsqueeze(-1)
    target = target.masked_fill(~valid, 0.0)
    divergence = torch.xlogy(target, target) - target * torch.log_softmax(pred, dim=-1)
    return torch.where(valid, divergence, 0.0).sum() / mask.sum().clamp_min(1)


def target_loss(spec: TargetSpec, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """The training loss that fits ``spec``'s kind."""
    return masked_kl(pred, target, mask) if spec.kind == "distribution" else masked_l1(pred, target, mask)


class TargetActivation(nn.Module):
    """Raw outputs -> targets: clamped to ``spec``'s range, or a softmax for distributions (no parameters)."""

    def __init__(self, spec: TargetSpec) -> None:
        super().__init__()
        self.distribution = spec.kind == "distribution"
        self.low, self.high = spec.low, spec.high

    def forward(self, raw: Tensor) -> Tensor:
        return torch.softmax(raw, dim=-1) if self.distribution else raw.clamp(self.low, self.high)
