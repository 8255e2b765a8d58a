"""GANimation's loss terms that are more than one torch call: WGAN-GP pieces and attention smoothness.

Sign convention (standard WGAN, as in the official GANimation code): the critic's score is a
*realness* score, high for real images. The critic maximises ``E[score(real)] - E[score(fake)]``
(:func:`wasserstein_gap`, an estimate of the Wasserstein-1 distance once the critic is
1-Lipschitz) and the generator minimises ``-E[score(fake)]``. The CAUSE paper words it the other
way round (a large value for fakes); that is the same game with the score negated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_NORM_FLOOR = 1e-12
"""Added under the square root so the norm's gradient stays finite at a zero input gradient."""


def wasserstein_gap(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean(real_scores) - mean(fake_scores)`` in float32: what the critic maximises."""
    return real_scores.float().mean() - fake_scores.float().mean()


def gradient_penalty(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    mix: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean_b (||d score(x_b) / d x_b||_2 - 1)^2`` (Gulrajani et al., 2017).

    ``x_b = mix_b * real_b + (1 - mix_b) * fake_b`` lies on the segment between a real and a fake
    image; ``mix`` (B,) holds the mixing weights, normally U(0, 1). ``score_fn`` maps images
    (B, ...) to one score per sample (B,); samples must not interact (no batch normalisation), so
    the gradient of the summed scores is each sample's own gradient.

    Computed in float32 with autocast disabled: under bf16/fp16 mixed precision the second-order
    gradient would otherwise run in low precision. The result keeps the graph to the critic's
    parameters (``create_graph=True``), so it can be added to the critic's loss.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    if mix.shape != real.shape[:1]:
        raise ValueError(f"gradient_penalty: mix must have shape (batch={real.shape[0]},), got {tuple(mix.shape)}")
    weight = mix.to(device=real.device, dtype=torch.float32).view(-1, *([1] * (real.dim() - 1)))
    with torch.autocast(device_type=real.device.type, enabled=False):
        between = weight * real.detach().float() + (1 - weight) * fake.detach().float()
        between.requires_grad_(True)
        scores = score_fn(between)
        if scores.shape != real.shape[:1]:
            raise ValueError(
                f"gradient_penalty: score_fn must return one score per sample, shape "
                f"({real.shape[0]},), got {tuple(scores.shape)}"
            )
        (gradient,) = torch.autograd.grad(scores.float().sum(), between, create_graph=True)
        norm = torch.sqrt(gradient.flatten(1).pow(2).sum(dim=1) + _NORM_FLOOR)
        return (norm - 1).pow(2).mean()


def attention_total_variation(mask: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of masks (B, C, H, W): per image the sum of absolute
    differences between horizontal and vertical neighbours, averaged over the batch.

    The official GANimation code sums over the batch as well; averaging keeps the weight
    independent of the (per-device) batch size. Float32 result.
    """
    if mask.dim() != 4:
        raise ValueError(f"attention_total_variation: mask must be (B, C, H, W), got {tuple(mask.shape)}")
    mask = mask.float()
    horizontal = (mask[..., :, 1:] - mask[..., :, :-1]).abs().flatten(1).sum(dim=1)
    vertical = (mask[..., 1:, :] - mask[..., :-1, :]).abs().flatten(1).sum(dim=1)
    return (horizontal + vertical).mean()
