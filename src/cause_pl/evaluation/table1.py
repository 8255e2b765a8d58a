"""The paper's Table 1 (MAE and MSE with 95% CIs, Zero and Mean baselines) for CAUSE models on a shard split."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cause_pl.data.speech import SpeechAUDataModule
from cause_pl.evaluation.coverage import IncompleteEvaluationError, check_coverage
from cause_pl.media.atomic import atomic_output
from cause_pl.metrics.au_metrics import AUMetrics
from cause_pl.metrics.report import AUReport, Estimate
from cause_pl.models.cause import CAUSERegressor

__all__ = ["IncompleteEvaluationError", "evaluate", "evaluate_on_shards", "table_rows", "write_table"]


@torch.inference_mode()
def evaluate(
    model: CAUSERegressor, data: SpeechAUDataModule, split: str, device: str, allow_missing: bool = False
) -> AUReport:
    """Metrics of ``model`` (predictions as at inference, ``model.finalise``) on every utterance of a split.

    Unreadable samples (damaged shards) raise :class:`IncompleteEvaluationError`; with ``allow_missing``
    the readable ones are evaluated and the report's ``unread_utterances`` says how many were left out.
    """
    model.to(device).eval()
    metric = AUMetrics(model.targets.size, mean_au=data.au_mean, labels=model.targets.labels).to(device)
    loader = data.test_dataloader() if split == "test" else data.val_dataloader()
    evaluated = 0
    for batch in tqdm(loader, desc=f"{split}", unit="batch", leave=False):
        mel, au, mask = (batch[name].to(device) for name in ("mel", "au", "mask"))
        metric.update(model.finalise(model(mel)), au, mask)
        evaluated += mel.shape[0]
    missing = check_coverage(data, split, loader, evaluated, allow_missing)
    return dataclasses.replace(metric.compute(), unread_utterances=missing)


def evaluate_on_shards(
    model: CAUSERegressor,
    shards: Path,
    split: str,
    *,
    device: str = "cpu",
    batch_size: int = 16,
    num_workers: int = 0,
    shard_url: str | None = None,
    allow_missing: bool = False,
) -> AUReport:
    """:func:`evaluate` on a split of the ``speech_au`` shards in ``shards``, read with the model's own frontend.

    ``shards`` holds index.json; the shards are read from there too, or from ``shard_url``, a template
    whose ``{name}`` is each shard's file name (a path or ``pipe:COMMAND``, see :mod:`cause_pl.shards.urls`).
    """
    data = SpeechAUDataModule(
        str(shards),
        eval_batch_size=batch_size,
        num_workers=num_workers,
        frontend=model.frontend_config.to_dict(),
        shard_url=shard_url,
    )
    data.setup("test" if split == "test" else "validate")
    return evaluate(model, data, split, device, allow_missing)


def _cell(estimate: Estimate, digits: int = 4) -> str:
    return f"{estimate.value:.{digits}f} [{estimate.ci_low:.{digits}f}, {estimate.ci_high:.{digits}f}]"


def table_rows(reports: dict[str, AUReport]) -> list[dict[str, Any]]:
    """Rows Zero, Mean (train AU means), then one per model: MAE and MSE with 95% CIs."""
    first = next(iter(reports.values()))
    rows = [("Zero", first.predictors["zero"]), ("Mean", first.predictors["mean"])]
    rows += [(name, report.predictors["model"]) for name, report in reports.items()]
    return [
        {
            "method": name,
            "mae": scores.overall.mae.value,
            "mae_ci_low": scores.overall.mae.ci_low,
            "mae_ci_high": scores.overall.mae.ci_high,
            "mse": scores.overall.mse.value,
            "mse_ci_low": scores.overall.mse.ci_low,
            "mse_ci_high": scores.overall.mse.ci_high,
            "MAE [95% CI]": _cell(scores.overall.mae),
            "MSE [95% CI]": _cell(scores.overall.mse),
        }
        for name, scores in rows
    ]


def to_markdown(rows: list[dict[str, object]], caption: str) -> str:
    lines = [caption, "", "| Method | MAE [95% CI] | MSE [95% CI] |", "|---|---|---|"]
    lines += [f"| {row['method']} | {row['MAE [95% CI]']} | {row['MSE [95% CI]']} |" for row in rows]
    return "\n".join(lines) + "\n"


def table_paths(out: Path) -> tuple[Path, Path]:
    """The files :func:`write_table` writes for ``out``: ``OUT.md`` and ``OUT.csv``.

    The suffixes are appended to the name as given, so a suffix the user chose is kept:
    ``results.v2`` gives ``results.v2.md`` and ``results.v2.csv``.
    """
    out = Path(out)
    return out.with_name(out.name + ".md"), out.with_name(out.name + ".csv")


def write_table(rows: list[dict[str, object]], caption: str, out: Path) -> str:
    """Write ``OUT.md`` (the table) and ``OUT.csv`` (the numbers); return the markdown.

    ``.md`` and ``.csv`` are appended to ``out``'s name (:func:`table_paths`). Each file is written
    atomically (:func:`cause_pl.media.atomic.atomic_output`), and the markdown only after the CSV
    is complete, so a failed write leaves the previous files untouched.
    """
    markdown = to_markdown(rows, caption)
    markdown_path, csv_path = table_paths(out)
    with atomic_output(csv_path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=[k for k in rows[0] if "[" not in k])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if "[" not in k} for row in rows)
    with atomic_output(markdown_path) as temporary:
        temporary.write_text(markdown, encoding="utf-8")
    return markdown


def model_names(paths: Sequence[Path], models: Sequence[CAUSERegressor]) -> list[str]:
    """Architecture names (MLP, CNN, CAUSAL_CNN L=2, ...), with the file stem where two checkpoints share one."""
    archs = [architecture_name(model) for model in models]
    return [
        arch if archs.count(arch) == 1 else f"{arch} ({path.stem})" for arch, path in zip(archs, paths, strict=True)
    ]


def architecture_name(model: CAUSERegressor) -> str:
    """``CNN``, ``DCNN``, ...; a causal net's look-ahead in frames follows its name (``CAUSAL_CNN L=2``)."""
    name = model.hparams.arch.upper()
    return name if not name.startswith("CAUSAL") else f"{name} L={model.net.lookahead}"
