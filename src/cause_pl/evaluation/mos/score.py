"""Score a naturalness test: the listeners' downloaded ratings -> MOS per system with 95% CIs.

* Ratings come from the files the page downloads (JSON or CSV); item ids are mapped to systems through
  the kit's ``manifest.json``, which the page never saw.
* A listener who got more than ``max_failed_checks`` of their attention checks wrong is dropped.
* MOS is the mean of all kept ratings of a system; its 95% CI is the t interval over those ratings
  (``mean +- t(0.975, n-1) * s / sqrt(n)``, as ITU-T P.800.2 computes it; the paper's Fig. 4 shows MOS
  with 95% CIs).
* Pairs of systems are compared by the Wilcoxon signed-rank test on per-listener mean ratings (each
  listener is one pair: listeners who rated both systems), Holm-corrected over all pairs.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from cause_pl.evaluation.mos.design import Design
from cause_pl.evaluation.mos.stats import holm, mean_ci, wilcoxon_signed_rank


class RatingsError(ValueError):
    """A rating file or manifest that cannot be scored."""


@dataclass(frozen=True)
class Rating:
    listener: int
    item: str
    rating: int
    source: str


@dataclass(frozen=True)
class SystemScore:
    system: str
    mos: float
    ci_low: float
    ci_high: float
    ratings: int
    listeners: int


@dataclass(frozen=True)
class PairTest:
    first: str
    second: str
    listeners: int
    difference: float
    """Mean over listeners of (first - second) per-listener mean ratings."""
    statistic: float
    p_value: float
    p_holm: float
    exact: bool


@dataclass(frozen=True)
class MosResult:
    systems: list[SystemScore]
    pairs: list[PairTest]
    listeners: list[int]
    dropped: list[int]
    alpha: float

    def significant(self, first: str, second: str) -> bool:
        """Whether the Holm-corrected test of the pair rejects equal naturalness at :attr:`alpha`."""
        pair = next(p for p in self.pairs if {p.first, p.second} == {first, second})
        return pair.p_holm < self.alpha


def read_manifest(path: Path) -> Design:
    """The design in a kit's ``manifest.json``."""
    try:
        return Design.from_manifest(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise RatingsError(f"{path}: not a naturalness-test manifest ({type(error).__name__}: {error})") from None


def read_ratings(path: Path) -> list[Rating]:
    """The rated items of one downloaded file (JSON or CSV); unrated items are skipped."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as stream:
                rows: list[dict[str, Any]] = list(csv.DictReader(stream))
            listener: Any = None  # a column of every row
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows, listener = data["ratings"], data["listener"]
        ratings = [
            Rating(int(row.get("listener", listener)), str(row["item"]), _rating(row["rating"]), str(path))
            for row in rows
            if row.get("rating") not in (None, "")
        ]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise RatingsError(
            f"{path}: not a ratings file of the naturalness test ({type(error).__name__}: {error})"
        ) from None
    if len({rating.listener for rating in ratings}) > 1:
        raise RatingsError(f"{path}: ratings of more than one listener in one file")
    return ratings


def _rating(value: Any) -> int:
    rating = int(value)
    if not 1 <= rating <= 5 or rating != float(value):
        raise ValueError(f"rating {value!r} is not one of 1..5")
    return rating


def collect(design: Design, files: Sequence[Path]) -> dict[int, dict[str, int]]:
    """listener -> item or check id -> rating, over all files; unknown ids and repeated listeners are errors."""
    by_listener: dict[int, dict[str, int]] = {}
    sources: dict[int, str] = {}
    for path in files:
        ratings = read_ratings(path)
        for rating in ratings:
            check = design.checks.get(rating.item)
            if rating.item not in design.items and check is None:
                raise RatingsError(f"{path}: item {rating.item!r} is not in this kit's manifest")
            if check is not None and check.listener != rating.listener:
                raise RatingsError(f"{path}: attention check {rating.item!r} belongs to listener {check.listener}")
        if ratings:
            listener = ratings[0].listener
            if listener in by_listener:
                raise RatingsError(f"{path}: listener {listener} is also rated in {sources[listener]}")
            by_listener[listener], sources[listener] = {r.item: r.rating for r in ratings}, str(path)
    return by_listener


def failed_checks(design: Design, ratings: dict[str, int]) -> int:
    """How many attention checks in ``ratings`` were answered other than asked."""
    return sum(1 for key, value in ratings.items() if key in design.checks and design.checks[key].expected != value)


def score(design: Design, files: Sequence[Path], max_failed_checks: int = 0, alpha: float = 0.05) -> MosResult:
    """MOS, CIs and pairwise tests of the listeners in ``files`` (see the module docstring)."""
    by_listener = collect(design, files)
    dropped = sorted(who for who, ratings in by_listener.items() if failed_checks(design, ratings) > max_failed_checks)
    kept = sorted(set(by_listener) - set(dropped))
    values: dict[str, list[int]] = defaultdict(list)
    per_listener: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for listener in kept:
        for key, rating in by_listener[listener].items():
            if key in design.items:
                system = design.items[key].system
                values[system].append(rating)
                per_listener[system][listener].append(rating)
    systems = []
    for system in design.systems:
        mos, low, high = mean_ci(values[system])
        systems.append(SystemScore(system, mos, low, high, len(values[system]), len(per_listener[system])))
    pairs = []
    for first, second in combinations(design.systems, 2):
        both = sorted(set(per_listener[first]) & set(per_listener[second]))
        differences = np.array(
            [np.mean(per_listener[first][who]) - np.mean(per_listener[second][who]) for who in both], dtype=float
        )
        test = wilcoxon_signed_rank(differences)
        mean = float(differences.mean()) if both else float("nan")
        pairs.append(PairTest(first, second, len(both), mean, test.statistic, test.p_value, test.p_value, test.exact))
    adjusted = holm([pair.p_value for pair in pairs])
    pairs = [PairTest(**{**pair.__dict__, "p_holm": p}) for pair, p in zip(pairs, adjusted, strict=True)]
    return MosResult(systems, pairs, kept, dropped, alpha)
