"""``cause-pl table1``: the paper's Table 1 for checkpoints on a split of speech shards."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cause_pl.data.speech import SpeechAUDataModule
from cause_pl.evaluation.table1 import evaluate, model_names, table_rows, write_table
from cause_pl.metrics.report import AUReport
from cause_pl.models.cause import load_cause_checkpoint


def table1(argv: Sequence[str]) -> int:
    """MAE and MSE with 95% confidence intervals for Zero, Mean and each checkpoint (paper Table 1)."""
    parser = argparse.ArgumentParser(prog="cause-pl table1", description=table1.__doc__)
    parser.add_argument("--shards", required=True, type=Path, help="speech_au shard directory (index.json)")
    parser.add_argument("--ckpt", required=True, nargs="+", type=Path, help="CAUSE checkpoints")
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--out", type=Path, default=Path("table1"), help="writes OUT.md and OUT.csv")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0)
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.ckpt if not path.is_file()]
    if missing:
        parser.error(f"checkpoint(s) not found: {', '.join(missing)}")
    models = [load_cause_checkpoint(path) for path in args.ckpt]
    reports: dict[str, AUReport] = {}
    for name, model in zip(model_names(args.ckpt, models), models):
        data = SpeechAUDataModule(
            str(args.shards),
            eval_batch_size=args.batch_size,
            num_workers=args.num_workers,
            frontend=model.frontend_config.to_dict(),
        )
        data.setup("test" if args.split == "test" else "validate")
        reports[name] = evaluate(model, data, args.split, args.device)
    rows = table_rows(reports)
    first = next(iter(reports.values()))
    caption = (
        f"Table 1: {args.split} split of {args.shards} ({first.num_utterances} utterances, "
        f"{first.num_frames} valid frames). 95% CIs: jackknife over utterances."
    )
    markdown = write_table(rows, caption, args.out)
    print(markdown)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')}")
    return 0
