"""Argument checks shared across layers: one wording for every "must be a positive integer" error."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any


def is_int(value: object) -> bool:
    """An integer (Python or numpy), but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int (numpy and JSON ints accepted); bools, floats and values <= 0 are rejected."""
    if not is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def finite_float(name: str, value: Any) -> float:
    """``value`` as a float; bools, non-numbers, NaN and infinities are rejected."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)
