"""MOS results as text: a Markdown report (``mos.md``), a CSV (``mos.csv``) and the lines printed."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from cause_pl.evaluation.mos.score import MosResult
from cause_pl.media.atomic import atomic_output

CSV_COLUMNS = ("system", "mos", "ci_low", "ci_high", "ratings", "listeners")


def _number(value: float, digits: int = 3) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def markdown(result: MosResult) -> str:
    """The report: MOS table, pairwise tests, and who was dropped."""
    lines = [
        "# Naturalness test (MOS)",
        "",
        f"{len(result.listeners)} listeners kept, {len(result.dropped)} dropped for failed attention checks"
        + (f" ({', '.join(map(str, result.dropped))})" if result.dropped else "")
        + ". MOS with 95% t intervals over all ratings of each system.",
        "",
        "| System | MOS | 95% CI | Ratings | Listeners |",
        "|---|---|---|---|---|",
    ]
    for s in result.systems:
        ci = f"[{_number(s.ci_low, 2)}, {_number(s.ci_high, 2)}]"
        lines.append(f"| {s.system} | {_number(s.mos, 2)} | {ci} | {s.ratings} | {s.listeners} |")
    lines += [
        "",
        "Pairwise: Wilcoxon signed-rank test on per-listener mean ratings, Holm-corrected; "
        f"significant at {result.alpha:g} marked *.",
        "",
        "| Pair | Listeners | Mean difference | W+ | p | p (Holm) | |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result.pairs:
        mark = "*" if p.p_holm < result.alpha else ""
        method = "" if p.exact else " (normal approx.)"
        lines.append(
            f"| {p.first} vs {p.second} | {p.listeners} | {_number(p.difference)} | {p.statistic:g} | "
            f"{p.p_value:.4g}{method} | {p.p_holm:.4g} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def csv_text(result: MosResult) -> str:
    """One row per system: MOS, CI bounds, counts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in result.systems:
        writer.writerow(
            [s.system, _number(s.mos, 4), _number(s.ci_low, 4), _number(s.ci_high, 4), s.ratings, s.listeners]
        )
    return buffer.getvalue()


def write_text(text: str, path: Path) -> Path:
    """``text`` at ``path``, atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path
