"""AU-intensity metrics with 95% confidence intervals over utterances, for DDP validation.

``AUMetrics`` scores a model's per-frame AU intensities against OpenFace targets and, from the
same frames, two reference predictors: the all-zero sequence (the paper's "Zero" floor,
Table 1) and the training-set mean per AU. For each it reports MAE, MSE, Pearson r (PCC) and
Lin's concordance correlation (CCC), per AU and averaged over AUs.

Every metric is pooled over valid frames: MAE is the sum of absolute errors over all frames of
all utterances divided by their number, and PCC/CCC use moments pooled the same way (population
moments, divisor n). Utterances, not frames, are the independent units, so the 95% intervals come
from the delete-one-utterance jackknife: ``value +- 1.96 * SE_jack``. The jackknife depends only
on the set of utterances, not their order, so a DDP run gives the numbers of a single process.

Conventions, chosen so that no NaN appears for data that exists:
- PCC and CCC of a constant predictor (zero, mean) are 0: it carries no information about how
  the target varies. Where the target (or the model's prediction) of an AU is constant, variance
  below round-off, PCC and CCC of that AU are 0 as well.
- With fewer than two utterances the interval is (nan, nan): one utterance says nothing about
  the spread between utterances, and a zero-width interval would claim certainty.
- With no valid frame at all, every value is nan.
- A non-finite target (NaN or inf label) on a valid frame leaves that (frame, AU) cell out of
  every predictor's statistics and is counted in ``AUReport.masked_targets``; it never turns a
  score into NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from cause_pl.au import AU_LABELS
from cause_pl.metrics.report import ALL_AUS, Z_95, AUReport, Estimate, PredictorScores, Scores

PREDICTOR_NAMES: tuple[str, ...] = ("model", "zero", "mean")


_CONSTANT_PREDICTORS = frozenset({"zero", "mean"})


# Per utterance, predictor and AU: valid frames, sum |e|, sum e^2, sum y, sum y^2, sum p, sum p^2, sum y*p.
_N, _ABS_ERR, _SQ_ERR, _Y, _YY, _P, _PP, _YP = range(8)


_NUM_STATS = 8


# A variance below this fraction of the second moment is round-off: the values are constant.
_RELATIVE_VARIANCE_FLOOR = 1e-10


class AUMetrics(Metric):
    """Per-AU MAE/MSE/PCC/CCC with jackknife 95% CIs for the model, zero and mean-AU predictors.

    Call ``update(pred, target, mask)`` per validation batch, where each batch row is one
    utterance; ``compute()`` gathers the per-utterance statistics of all DDP ranks once and
    returns an ``AUReport``; log it with ``self.log_dict(report.as_flat_dict("val"))``.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False
    # The state registered by ``add_state`` below. Inside a synced ``compute()`` torchmetrics holds it as
    # one concatenated tensor instead, which ``dim_zero_cat`` and ``len`` (all that compute uses) accept.
    utterance_stats: list[Tensor]
    masked_targets: Tensor
    masked_predictions: Tensor

    def __init__(self, num_aus: int = 17, mean_au: Tensor | None = None, labels: Sequence[str] | None = None) -> None:
        super().__init__(sync_on_compute=True, dist_sync_on_step=False)
        if num_aus < 1:
            raise ValueError(f"AUMetrics: num_aus must be positive, got {num_aus}")
        self.num_aus = num_aus
        self.labels = _resolve_labels(num_aus, labels)
        self.mean_au = _check_mean_au(mean_au, num_aus)
        self.predictors = PREDICTOR_NAMES if self.mean_au is not None else PREDICTOR_NAMES[:2]
        # Flat 1-D float64 chunks, so that a rank without data can sync an empty 1-D tensor.
        self.add_state("utterance_stats", default=[], dist_reduce_fx="cat")
        self.add_state("masked_targets", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("masked_predictions", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    @property
    def dtype(self) -> torch.dtype:
        """Statistics are float64 whatever the module is cast to (and so is a rank's empty sync)."""
        return torch.float64

    def update(self, pred: Tensor, target: Tensor, mask: Tensor) -> None:
        """Add a batch of utterances: ``pred``/``target`` (B, T, K) float, ``mask`` (B, T) bool."""
        self._check_batch(pred, target, mask)
        target64 = target.to(torch.float64)
        candidates = [pred.to(torch.float64), torch.zeros_like(target64)]
        if self.mean_au is not None:
            candidates.append(self.mean_au.to(target64.device).expand_as(target64))
        p = torch.stack(candidates, dim=1)  # (B, P, T, K)
        y = target64.unsqueeze(1).expand_as(p)
        finite = torch.isfinite(target64)
        self.masked_targets += (mask[:, :, None] & ~finite).sum()
        predicted = torch.isfinite(candidates[0])  # a broken model's NaN: left out for every predictor alike
        self.masked_predictions += (mask[:, :, None] & finite & ~predicted).sum()
        valid = (mask[:, :, None] & finite & predicted).unsqueeze(1).expand_as(p)
        e = p - y
        terms = (torch.ones_like(p), e.abs(), e * e, y, y * y, p, p * p, y * p)
        # where(), not multiplication: masked frames may hold NaN or inf.
        stats = torch.stack([torch.where(valid, term, 0.0).sum(dim=2) for term in terms], dim=-1)
        self.utterance_stats.append(stats.flatten())

    def compute(self) -> AUReport:
        """Scores over all utterances seen (on all ranks) since the last ``reset()``."""
        stats = self._stats_per_utterance()  # (U, P, K, S)
        constant = torch.tensor([name in _CONSTANT_PREDICTORS for name in self.predictors], device=stats.device)[
            :, None
        ]
        totals = stats.sum(dim=0)
        point = _with_au_average(_scores(totals, constant))  # (P, K + 1, M)
        leave_one_out = _with_au_average(_scores(totals - stats, constant))  # (U, P, K + 1, M)
        half_width = Z_95 * _jackknife_standard_error(leave_one_out)
        table = torch.stack([point, point - half_width, point + half_width], dim=-1).tolist()
        return AUReport(
            labels=self.labels,
            predictors={name: _predictor_scores(table[i], self.labels) for i, name in enumerate(self.predictors)},
            num_utterances=stats.shape[0],
            num_frames=int(totals[0, :, _N].max().item()),
            masked_targets=int(self.masked_targets.item()),
            masked_predictions=int(self.masked_predictions.item()),
        )

    def _stats_per_utterance(self) -> Tensor:
        """All utterances' statistics (U, P, K, S), leaving out those without a valid frame."""
        chunks = self.utterance_stats
        flat = dim_zero_cat(chunks) if len(chunks) else torch.zeros(0, dtype=torch.float64, device=self.device)
        stats = flat.reshape(-1, len(self.predictors), self.num_aus, _NUM_STATS)
        return stats[stats[:, 0, :, _N].sum(dim=-1) > 0]

    def _check_batch(self, pred: Tensor, target: Tensor, mask: Tensor) -> None:
        expected = f"(batch, frames, {self.num_aus})"
        if pred.ndim != 3 or pred.shape[-1] != self.num_aus:
            raise ValueError(f"AUMetrics.update: pred has shape {tuple(pred.shape)}, expected {expected}")
        if target.shape != pred.shape:
            raise ValueError(
                f"AUMetrics.update: target has shape {tuple(target.shape)}, "
                f"pred has {tuple(pred.shape)}; they must match"
            )
        if not (pred.is_floating_point() and target.is_floating_point()):
            raise TypeError(
                f"AUMetrics.update: pred and target must be floating point, got {pred.dtype} and {target.dtype}"
            )
        if mask.dtype != torch.bool or mask.shape != pred.shape[:2]:
            raise ValueError(
                f"AUMetrics.update: mask must be bool of shape {tuple(pred.shape[:2])}, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )


def _resolve_labels(num_aus: int, labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is None:
        return AU_LABELS if num_aus == len(AU_LABELS) else tuple(f"AU{i}" for i in range(num_aus))
    resolved = tuple(labels)
    if len(resolved) != num_aus or len(set(resolved)) != num_aus:
        raise ValueError(f"AUMetrics: labels must be {num_aus} distinct names, got {resolved}")
    clashes = set(resolved) & {*PREDICTOR_NAMES, ALL_AUS, ""}
    if clashes:
        raise ValueError(f"AUMetrics: labels {sorted(clashes)} clash with predictor or row names")
    return resolved


def _check_mean_au(mean_au: Tensor | None, num_aus: int) -> Tensor | None:
    """The mean AU as a float64 CPU tensor, kept out of module casts like ``.half()``."""
    if mean_au is None:
        return None
    mean = torch.as_tensor(mean_au).detach().to("cpu", torch.float64)
    if mean.shape != (num_aus,) or not torch.isfinite(mean).all():
        raise ValueError(f"AUMetrics: mean_au must be {num_aus} finite values, got shape {tuple(mean.shape)}")
    return mean


def _scores(stats: Tensor, constant: Tensor) -> Tensor:
    """MAE, MSE, PCC, CCC (..., P, K, 4) from summed statistics (..., P, K, S).

    ``constant`` (P, 1) marks predictors whose PCC and CCC are 0 by definition.
    """
    n = stats[..., _N]
    mae, mse = stats[..., _ABS_ERR] / n, stats[..., _SQ_ERR] / n
    mean_y, mean_p = stats[..., _Y] / n, stats[..., _P] / n
    second_y, second_p = stats[..., _YY] / n, stats[..., _PP] / n
    var_y = (second_y - mean_y**2).clamp_min(0.0)
    var_p = (second_p - mean_p**2).clamp_min(0.0)
    flat_y = var_y <= _RELATIVE_VARIANCE_FLOOR * second_y
    flat_p = (var_p <= _RELATIVE_VARIANCE_FLOOR * second_p) | constant
    var_y, var_p = var_y.masked_fill(flat_y, 0.0), var_p.masked_fill(flat_p, 0.0)
    cov = (stats[..., _YP] / n - mean_y * mean_p).masked_fill(flat_y | flat_p, 0.0)
    pcc_denominator = (var_y * var_p).sqrt()
    pcc = torch.where(pcc_denominator > 0, cov / pcc_denominator, 0.0).clamp(-1.0, 1.0)
    ccc_denominator = var_y + var_p + (mean_y - mean_p) ** 2
    ccc = torch.where(ccc_denominator > 0, 2 * cov / ccc_denominator, 0.0).clamp(-1.0, 1.0)
    scores = torch.stack([mae, mse, pcc, ccc], dim=-1)
    return torch.where((n > 0).unsqueeze(-1), scores, torch.nan)


def _with_au_average(scores: Tensor) -> Tensor:
    """Append the mean over AUs: (..., K, M) -> (..., K + 1, M), the average last."""
    return torch.cat([scores, scores.mean(dim=-2, keepdim=True)], dim=-2)


def _jackknife_standard_error(leave_one_out: Tensor) -> Tensor:
    """Delete-one jackknife SE from the U leave-one-out values on dim 0; nan when U < 2."""
    count = leave_one_out.shape[0]
    if count < 2:
        return torch.full_like(leave_one_out.sum(dim=0), torch.nan)
    spread = (leave_one_out - leave_one_out.mean(dim=0)).square().sum(dim=0)
    return (spread * (count - 1) / count).sqrt()


def _predictor_scores(table: list, labels: tuple[str, ...]) -> PredictorScores:
    """Nested lists (K + 1, M, 3) of value/low/high into ``PredictorScores``."""

    def scores(rows: list) -> Scores:
        return Scores(*(Estimate(*row) for row in rows))

    return PredictorScores(
        overall=scores(table[-1]), per_au={label: scores(table[k]) for k, label in enumerate(labels)}
    )
