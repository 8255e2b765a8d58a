"""Losses and output mappings per target kind: L1 for intensities, KL for distributions."""

from __future__ import annotations

import math

import torch

from cause_pl.nets.outputs import TargetActivation, masked_kl, target_loss
from cause_pl.targets import PRESETS


def test_masked_kl_equals_hand_computation_and_ignores_invalid_frames() -> None:
    pred = torch.tensor([[[0.0, math.log(3.0)], [5.0, -5.0]]])  # softmax of frame 0: (1/4, 3/4)
    target = torch.tensor([[[0.5, 0.5], [float("nan"), 2.0]]])
    mask = torch.tensor([[True, False]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert math.isclose(masked_kl(pred, target, mask).item(), expected, rel_tol=1e-6)
    pred.requires_grad_(True)
    masked_kl(pred, target, mask).backward()
    assert pred.grad is not None and torch.equal(pred.grad[0, 1], torch.zeros(2))


def test_kl_is_zero_at_the_target_and_handles_zero_probabilities() -> None:
    target = torch.tensor([[[0.0, 0.2, 0.8]]])
    logits = torch.log(target.clamp_min(1e-12))
    assert masked_kl(logits, target, torch.ones(1, 1, dtype=torch.bool)).item() < 1e-6
    assert masked_kl(logits, target, torch.zeros(1, 1, dtype=torch.bool)).item() == 0.0


def test_each_kind_gets_its_loss_and_mapping() -> None:
    raw = torch.tensor([[[-3.0, 1.0, 9.0, 0.5, 0.0, 0.0, 0.0, 0.0]]])
    emotions, arkit = PRESETS["emotions"], PRESETS["arkit"]
    assert torch.allclose(TargetActivation(emotions)(raw), torch.softmax(raw, -1))
    assert TargetActivation(PRESETS["fera"])(raw[..., :5]).tolist() == [[[0.0, 1.0, 5.0, 0.5, 0.0]]]
    assert TargetActivation(arkit)(torch.full((1, 52), 3.0)).max().item() == 1.0
    mask = torch.ones(1, 1, dtype=torch.bool)
    target = torch.softmax(torch.zeros(1, 1, 8), -1)
    assert torch.equal(target_loss(emotions, raw, target, mask), masked_kl(raw, target, mask))
    assert target_loss(PRESETS["fera"], raw[..., :5], raw[..., :5], mask).item() == 0.0
