"""Small statistics for MOS, in plain numpy (no scipy): t intervals, Wilcoxon signed-rank, Holm.

* :func:`t_quantile`: Student's t quantile from the regularised incomplete beta function (continued
  fraction, as in Numerical Recipes), inverted by bisection; accurate to ~1e-10.
* :func:`wilcoxon_signed_rank`: two-sided test of paired differences. Zero differences are dropped
  (Wilcoxon's method), ties get average ranks. Up to :data:`EXACT_MAX` non-zero pairs the p-value is
  exact: the permutation distribution of W+ over all 2^n sign flips of the (tied) ranks, by dynamic
  programming; above that, the normal approximation with the tie-corrected variance.
* :func:`holm`: Holm's step-down adjustment of a family of p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EXACT_MAX = 50
"""Largest number of non-zero differences whose Wilcoxon p-value is computed exactly."""


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``df`` > 0 degrees of freedom."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return 0.5 * (low + high)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t interval ``mean +- t(level, n-1) * s / sqrt(n)``; NaN bounds for n < 2."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2.0, data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class SignedRank:
    """Result of a Wilcoxon signed-rank test: W+ (sum of positive ranks), pairs used, p-value, method."""

    statistic: float
    n: int
    p_value: float
    exact: bool


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def wilcoxon_signed_rank(differences: Sequence[float] | np.ndarray) -> SignedRank:
    """Two-sided Wilcoxon signed-rank test of paired ``differences`` (see the module docstring)."""
    data = np.asarray(differences, dtype=float)
    data = data[np.abs(data) > 1e-12]
    n = int(data.size)
    if n == 0:
        return SignedRank(0.0, 0, 1.0, True)
    ranks = average_ranks(np.abs(data))
    w_plus = float(ranks[data > 0].sum())
    if n <= EXACT_MAX:
        doubled = np.rint(2 * ranks).astype(int)  # average ranks are halves: doubled they are integers
        counts = np.zeros(int(doubled.sum()) + 1)
        counts[0] = 1.0
        for rank in doubled:  # distribution of the doubled W+ over the sign flips, each of probability 1/2
            counts = 0.5 * (counts + np.concatenate([np.zeros(rank), counts[:-rank]]))
        observed = round(2 * w_plus)
        lower, upper = float(counts[: observed + 1].sum()), float(counts[observed:].sum())
        return SignedRank(w_plus, n, min(1.0, 2.0 * min(lower, upper)), True)
    mean = n * (n + 1) / 4.0
    _, tie_counts = np.unique(ranks, return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float((tie_counts**3 - tie_counts).sum()) / 48.0
    z = (abs(w_plus - mean) - 0.5) / math.sqrt(variance) if variance > 0 else 0.0
    return SignedRank(w_plus, n, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0))), False)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted, running = [0.0] * len(p_values), 0.0
    for step, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - step) * p_values[index]))
        adjusted[index] = running
    return adjusted
