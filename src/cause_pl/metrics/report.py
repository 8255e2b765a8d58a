"""What :class:`~cause_pl.metrics.au_metrics.AUMetrics` computes: estimates with 95% intervals, per AU
and per predictor, and the flat names they are logged under.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

METRIC_NAMES: tuple[str, ...] = ("mae", "mse", "pcc", "ccc")


ALL_AUS = "all"
"""Row label of the mean over AUs in tables."""


Z_95 = 1.959963984540054
"""Two-sided 95% quantile of the standard normal distribution."""


@dataclass
class Estimate:
    """A point value with its 95% confidence interval."""

    value: float
    ci_low: float
    ci_high: float


@dataclass
class Scores:
    """MAE, MSE, PCC and CCC of one predictor on one AU (or averaged over AUs)."""

    mae: Estimate
    mse: Estimate
    pcc: Estimate
    ccc: Estimate


@dataclass
class PredictorScores:
    """One predictor's scores: averaged over AUs (``overall``) and per AU label."""

    overall: Scores
    per_au: Mapping[str, Scores]


@dataclass
class AUReport:
    """Result of ``AUMetrics.compute()``.

    Plain (not frozen) dataclasses: torchmetrics rebuilds what ``compute()`` returns field by
    field and rejects frozen ones.

    ``predictors`` maps "model", "zero" and (when a mean AU was given) "mean" to their scores.
    ``overall`` is the mean over AUs of the per-AU values; every frame carries all AUs, so for
    MAE and MSE it equals the value pooled over all frames and AUs.
    """

    labels: tuple[str, ...]
    predictors: Mapping[str, PredictorScores]
    num_utterances: int
    num_frames: int
    masked_targets: int = 0
    """Target cells (frame, AU) left out although their frame was valid: NaN or inf labels."""
    masked_predictions: int = 0
    """Cells (frame, AU) with a valid target that the model predicted as NaN or inf: left out for every
    predictor, so that all are scored on the same cells. Non-zero means the model is broken there."""
    unread_utterances: int = 0
    """Utterances the dataset lists that could not be read (damaged shards) and were left out."""

    @property
    def model(self) -> PredictorScores:
        """Scores of the model being evaluated."""
        return self.predictors["model"]

    def as_flat_dict(self, prefix: str = "val", per_au: bool = True) -> dict[str, float]:
        """Python floats keyed for ``LightningModule.log_dict``.

        Keys are ``{prefix}[/{predictor}][/{AU}]/{metric}`` plus ``_ci_low``/``_ci_high``
        variants; the predictor part is left out for the model (``val/mae``, ``val/AU12/pcc``,
        ``val/zero/mae``). ``per_au=False`` keeps only the AU averages and the counts.
        """
        flat = {
            _key(prefix, "num_utterances"): float(self.num_utterances),
            _key(prefix, "num_frames"): float(self.num_frames),
        }
        for predictor, scores in self.predictors.items():
            head = prefix if predictor == "model" else _key(prefix, predictor)
            groups = {head: scores.overall}
            if per_au:
                groups |= {_key(head, label): scores.per_au[label] for label in self.labels}
            for group_prefix, group in groups.items():
                for metric, estimate in _named_estimates(group):
                    key = _key(group_prefix, metric)
                    flat |= {key: estimate.value, f"{key}_ci_low": estimate.ci_low, f"{key}_ci_high": estimate.ci_high}
        return flat

    def to_rows(self) -> list[dict[str, float | str]]:
        """One row per (AU, predictor), AU averages first: e.g. for ``pandas.DataFrame``."""
        rows: list[dict[str, float | str]] = []
        for au in (ALL_AUS, *self.labels):
            for predictor, scores in self.predictors.items():
                group = scores.overall if au == ALL_AUS else scores.per_au[au]
                row: dict[str, float | str] = {"au": au, "predictor": predictor}
                for metric, estimate in _named_estimates(group):
                    row |= {
                        metric: estimate.value,
                        f"{metric}_ci_low": estimate.ci_low,
                        f"{metric}_ci_high": estimate.ci_high,
                    }
                rows.append(row)
        return rows

    def to_markdown(self, digits: int = 3) -> str:
        """Markdown table of ``to_rows()``, each cell ``value [ci_low, ci_high]``."""
        header = ["AU", "predictor", *(metric.upper() for metric in METRIC_NAMES)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.to_rows():
            cells = [str(row["au"]), str(row["predictor"])]
            cells += [
                f"{row[m]:.{digits}f} [{row[f'{m}_ci_low']:.{digits}f}, {row[f'{m}_ci_high']:.{digits}f}]"
                for m in METRIC_NAMES
            ]
            lines.append("| " + " | ".join(cells) + " |")
        caption = f"{self.num_utterances} utterances, {self.num_frames} valid frames, 95% CI"
        if self.masked_targets:
            caption += f"; {self.masked_targets} non-finite target values left out"
        if self.masked_predictions:
            caption += f"; {self.masked_predictions} non-finite predictions left out"
        return "\n".join([*lines, "", caption])


def _key(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _named_estimates(scores: Scores) -> list[tuple[str, Estimate]]:
    return [(field.name, getattr(scores, field.name)) for field in fields(scores)]
