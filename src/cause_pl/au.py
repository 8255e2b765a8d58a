"""The 17 facial action units (AUs) that OpenFace 2 estimates intensities for.

Order is OpenFace's column order; every array in this package with an AU axis uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

AU_MIN: float = 0.0
"""Lowest intensity on the FACS A-E scale as OpenFace reports it (absent)."""
AU_MAX: float = 5.0
"""Highest intensity (E, maximum)."""


@dataclass(frozen=True)
class ActionUnit:
    """One action unit: its FACS number and name."""

    code: int
    name: str

    @property
    def column(self) -> str:
        """OpenFace intensity column name, e.g. ``AU01_r``."""
        return f"AU{self.code:02d}_r"

    @property
    def label(self) -> str:
        """Short label for plots and tables, e.g. ``AU01``."""
        return f"AU{self.code:02d}"


ACTION_UNITS: tuple[ActionUnit, ...] = (
    ActionUnit(1, "inner brow raiser"),
    ActionUnit(2, "outer brow raiser"),
    ActionUnit(4, "brow lowerer"),
    ActionUnit(5, "upper lid raiser"),
    ActionUnit(6, "cheek raiser"),
    ActionUnit(7, "lid tightener"),
    ActionUnit(9, "nose wrinkler"),
    ActionUnit(10, "upper lip raiser"),
    ActionUnit(12, "lip corner puller"),
    ActionUnit(14, "dimpler"),
    ActionUnit(15, "lip corner depressor"),
    ActionUnit(17, "chin raiser"),
    ActionUnit(20, "lip stretcher"),
    ActionUnit(23, "lip tightener"),
    ActionUnit(25, "lips part"),
    ActionUnit(26, "jaw drop"),
    ActionUnit(45, "blink"),
)

NUM_AUS: int = len(ACTION_UNITS)
AU_COLUMNS: tuple[str, ...] = tuple(au.column for au in ACTION_UNITS)
AU_LABELS: tuple[str, ...] = tuple(au.label for au in ACTION_UNITS)


def au_index(code: int) -> int:
    """Position of AU ``code`` (e.g. 12) on the AU axis."""
    for position, au in enumerate(ACTION_UNITS):
        if au.code == code:
            return position
    raise KeyError(f"AU{code} is not one of the 17 OpenFace intensity AUs: {AU_LABELS}")
