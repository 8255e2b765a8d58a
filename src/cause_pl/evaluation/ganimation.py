"""Objective checks of an AU-conditioned face editor that do not trust its own critic.

* :func:`au_error`: do generated faces show the target AUs, as read by an *independent* AU reader
  (one the generator never trained against, e.g. :class:`FaceAURegressor` fitted on real faces)?
* :func:`identity_score`: do they keep the source's low-frequency content (a cheap identity
  proxy, see its docstring)?
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cause_pl.au import NUM_AUS
from cause_pl.data.faces import FaceAUDataModule
from cause_pl.evaluation.coverage import check_coverage
from cause_pl.models.ganimation import GANimation

AUReader = Callable[[torch.Tensor], torch.Tensor]
"""Images (B, 3, H, W) in [-1, 1] -> AU intensities (B, 17) on the /5 scale."""


@torch.no_grad()
def au_error(generated_images: torch.Tensor, target_au: torch.Tensor, au_reader: AUReader) -> float:
    """Mean absolute error between ``target_au`` (B, 17) and the AUs ``au_reader`` reads from
    ``generated_images`` (B, 3, H, W), both on the /5 scale (0.1 = half an intensity level)."""
    if generated_images.shape[:1] != target_au.shape[:1]:
        raise ValueError(
            f"au_error: generated_images {tuple(generated_images.shape)} and target_au "
            f"{tuple(target_au.shape)} must share the batch size"
        )
    read = au_reader(generated_images)
    if read.shape != target_au.shape:
        raise ValueError(f"au_error: au_reader returned shape {tuple(read.shape)}, expected {tuple(target_au.shape)}")
    return float((read.float() - target_au.float().to(read.device)).abs().mean())


@torch.no_grad()
def identity_score(generated: torch.Tensor, source: torch.Tensor, pooled_size: int = 8) -> float:
    """``1 - mean|lowpass(generated) - lowpass(source)| / 2`` in [0, 1]; 1 = same low frequencies.

    A simple identity proxy, not a face recogniser: both image batches (B, 3, H, W) in [-1, 1]
    are average-pooled to ``pooled_size`` x ``pooled_size``, which keeps what identifies a person
    in a fixed crop (skin, hair and background colours, head shape) and mostly drops the small
    local changes an expression edit makes. Expect values near 1 for faithful edits; a generator
    that paints a different face or washes colours out scores lower.
    """
    if generated.shape != source.shape or generated.dim() != 4:
        raise ValueError(
            f"identity_score: generated {tuple(generated.shape)} and source {tuple(source.shape)} "
            "must be equal (B, 3, H, W) shapes"
        )
    if pooled_size < 1:
        raise ValueError(f"identity_score: pooled_size must be >= 1, got {pooled_size}")
    low_generated = F.adaptive_avg_pool2d(generated.float(), pooled_size)
    low_source = F.adaptive_avg_pool2d(source.float().to(generated.device), pooled_size)
    return float(1 - (low_generated - low_source).abs().mean() / 2)


class FaceAURegressor(nn.Module):
    """Small CNN reading 17 AU intensities (/5 scale) from face images (B, 3, H, W) in [-1, 1].

    ``num_down`` stride-2 conv blocks (BatchNorm + ReLU, width doubling up to 8x) then a linear
    layer over a 4 x 4 pooled map, which keeps where a feature sits (brows vs mouth). Any input
    of at least ``2**num_down`` pixels a side works.
    """

    def __init__(self, cond_dim: int = NUM_AUS, base_channels: int = 32, num_down: int = 3) -> None:
        super().__init__()
        if cond_dim < 1 or base_channels < 1 or num_down < 1:
            raise ValueError(
                f"FaceAURegressor: cond_dim, base_channels and num_down must be >= 1, "
                f"got {cond_dim}, {base_channels}, {num_down}"
            )
        widths = [base_channels * 2 ** min(level, 3) for level in range(num_down)]
        layers: list[nn.Module] = []
        for in_channels, width in zip([3, *widths], widths, strict=False):
            layers += [
                nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(widths[-1] * 16, cond_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"FaceAURegressor: images must be (B, 3, H, W), got {tuple(images.shape)}")
        return self.head(self.features(images))


def fit_face_au_regressor(
    dataloader: Iterable[dict[str, Any]],
    steps: int,
    *,
    regressor: FaceAURegressor | None = None,
    lr: float = 1e-3,
) -> FaceAURegressor:
    """Train ``regressor`` (a new :class:`FaceAURegressor` by default) for ``steps`` Adam steps on
    MSE between its reading of ``batch["image"]`` and ``batch["au"]`` (the face batch contract),
    cycling through ``dataloader``. Returns it frozen: eval mode, no parameter gradients."""
    if steps < 1:
        raise ValueError(f"fit_face_au_regressor: steps must be >= 1, got {steps}")
    if regressor is None:
        regressor = FaceAURegressor()
    device = next(regressor.parameters()).device
    optimizer = torch.optim.Adam(regressor.parameters(), lr=lr)
    regressor.train()
    batches = _cycle(dataloader)
    for _ in range(steps):
        batch = next(batches)
        loss = F.mse_loss(regressor(batch["image"].to(device)), batch["au"].float().to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    regressor.eval()
    regressor.requires_grad_(False)
    return regressor


def _cycle(dataloader: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while True:
        empty = True
        for batch in dataloader:
            empty = False
            yield batch
        if empty:
            raise ValueError("fit_face_au_regressor: dataloader yielded no batches")


@torch.inference_mode()
def score(
    model: GANimation, data: FaceAUDataModule, split: str, reader: AUReader, allow_missing: bool = False
) -> dict[str, float]:
    """Batch-weighted means of the AU errors and identity over every face of ``split``.

    Faces index.json lists but that could not be read raise :class:`IncompleteEvaluationError`; with
    ``allow_missing`` the readable ones are scored and ``skipped_faces`` says how many were left out.
    """
    sums = {"au_error": 0.0, "identity": 0.0, "reader_floor": 0.0, "copy_input_au_error": 0.0}
    count = 0
    loader = data.eval_dataloader(split)
    for batch in tqdm(loader, desc=split, unit="batch", leave=False):
        image, target = batch["image"], batch["target_au"]
        generated = model.generate(image, target).image
        size = len(image)
        sums["au_error"] += size * au_error(generated, target, reader)
        sums["identity"] += size * identity_score(generated, image)
        sums["reader_floor"] += size * au_error(image, batch["au"], reader)
        sums["copy_input_au_error"] += size * au_error(image, target, reader)
        count += size
    skipped = check_coverage(data, split, loader, count, allow_missing)
    return {name: value / max(count, 1) for name, value in sums.items()} | {"faces": count, "skipped_faces": skipped}
