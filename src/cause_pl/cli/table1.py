"""``cause-pl table1``: the paper's Table 1 for checkpoints on a split of speech shards."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cause_pl.cli.command import UsageError, require_file, require_output
from cause_pl.cli.estimate import checked_device
from cause_pl.evaluation.table1 import evaluate_on_shards, model_names, table_paths, table_rows, write_table
from cause_pl.metrics.report import AUReport
from cause_pl.models.cause import load_cause_checkpoint


def table1(
    *,
    shards: Path,
    ckpt: list[Path],
    split: Literal["test", "val"] = "test",
    out: Path = Path("table1"),
    device: str = "cpu",
    batch_size: int = 16,
    num_workers: int = 0,
    shard_url: str | None = None,
    allow_missing: bool = False,
) -> int:
    """MAE and MSE with 95% confidence intervals for Zero, Mean and each checkpoint (paper Table 1).

    Args:
        shards: speech_au shard directory (index.json)
        ckpt: CAUSE checkpoints, one or more: --ckpt mlp.ckpt cnn.ckpt (in a config: a YAML list)
        split: split to evaluate
        out: writes OUT.md and OUT.csv
        device: torch device, e.g. cpu or cuda
        batch_size: utterances per batch
        num_workers: data-loading processes
        shard_url: read the shards from here instead of SHARDS (which still holds index.json): a template
            whose {name} is each shard's file name, a path (/scratch/vox/{name}) or a command writing
            the shard to stdout (pipe:aws s3 cp s3://bucket/vox/{name} -)
        allow_missing: evaluate the readable samples when shards are damaged (the caption says how many
            were skipped) instead of failing
    """
    checked_device(device)
    if batch_size < 1:
        raise UsageError(f"--batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise UsageError(f"--num_workers must be >= 0, got {num_workers}")
    for path in ckpt:
        require_file(path, "--ckpt")
    for path in table_paths(out):  # fail before evaluating when an output cannot be written
        require_output(path, "--out")
    models = [load_cause_checkpoint(path) for path in ckpt]
    reports: dict[str, AUReport] = {}
    for name, model in zip(model_names(ckpt, models), models, strict=True):
        reports[name] = evaluate_on_shards(
            model,
            shards,
            split,
            device=device,
            batch_size=batch_size,
            num_workers=num_workers,
            shard_url=shard_url,
            allow_missing=allow_missing,
        )
    rows = table_rows(reports)
    first = next(iter(reports.values()))
    caption = (
        f"Table 1: {split} split of {shards} ({first.num_utterances} utterances, "
        f"{first.num_frames} valid frames). 95% CIs: jackknife over utterances."
    )
    if first.unread_utterances:
        caption += (
            f" INCOMPLETE: {first.unread_utterances} utterances listed in index.json were unreadable "
            "(damaged shards) and skipped (--allow_missing)."
        )
    for name, report in reports.items():
        if report.masked_predictions:
            caption += (
                f" WARNING: {name} predicted {report.masked_predictions} NaN or infinite AU values; those cells "
                "were left out for every method."
            )
    markdown = write_table(rows, caption, out)
    print(markdown)
    markdown_path, csv_path = table_paths(out)
    print(f"wrote {markdown_path} and {csv_path}")
    return 0
