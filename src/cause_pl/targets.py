"""What a speech net regresses per frame: the target vector's names, range and kind.

The paper's targets are OpenFace's 17 AU intensities (0..5). ``TargetSpec`` describes any
per-frame target instead: an AU subset (DISFA's 12, FERA 2015's 5), an emotion distribution
(FERPlus's 8 classes, the paper's CME baseline) or ARKit's 52 blendshape weights. Its ``kind``
says which loss and output mapping fit it:

- ``intensity``: independent values in ``low..high``; L1 loss, outputs clamped to the range;
- ``distribution``: non-negative values summing to 1; KL divergence from the target to the
  softmax of the outputs, outputs mapped by softmax.

A spec travels with the data (``index.json``'s ``targets``) and with a checkpoint (the model's
``targets`` hyperparameter), so every consumer (metrics, plots, CSV writers, GANimation's
conditioning) can follow the names and size. No spec means the paper's 17 AUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cause_pl.au import ACTION_UNITS, AU_MAX, AU_MIN, NUM_AUS, au_index

KINDS = ("intensity", "distribution")


@dataclass(frozen=True)
class TargetSpec:
    """A per-frame target vector: ``columns`` (as in the source CSVs), plot ``labels``, range and kind."""

    name: str
    columns: tuple[str, ...]
    labels: tuple[str, ...]
    low: float
    high: float
    kind: str = "intensity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(str(column) for column in self.columns))
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if not self.columns:
            raise ValueError(f"targets {self.name!r}: no columns")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"targets {self.name!r}: repeated columns in {list(self.columns)}")
        if len(self.labels) != len(self.columns):
            raise ValueError(f"targets {self.name!r}: {len(self.labels)} labels for {len(self.columns)} columns")
        if self.kind not in KINDS:
            raise ValueError(f"targets {self.name!r}: kind {self.kind!r}, expected one of {KINDS}")
        if not self.low < self.high:
            raise ValueError(f"targets {self.name!r}: need low < high, got {self.low}..{self.high}")
        if self.kind == "distribution" and (self.low, self.high) != (0.0, 1.0):
            raise ValueError(f"targets {self.name!r}: a distribution's range is 0..1, got {self.low}..{self.high}")

    @property
    def size(self) -> int:
        return len(self.columns)

    @property
    def is_aus(self) -> bool:
        """Whether these are OpenFace AU intensities (all columns ``AUxx_r``, 0..5)."""
        return all(column in AU_COLUMN_SET for column in self.columns) and (self.low, self.high) == (AU_MIN, AU_MAX)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (what index.json and checkpoints store)."""
        return {**asdict(self), "columns": list(self.columns), "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetSpec:
        """Inverse of ``to_dict``; unknown keys are an error."""
        known = {"name", "columns", "labels", "low", "high", "kind"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown target spec keys {unknown}; known: {sorted(known)}")
        return cls(
            name=str(data.get("name", "custom")),
            columns=tuple(data["columns"]),
            labels=tuple(data.get("labels", data["columns"])),
            low=float(data["low"]),
            high=float(data["high"]),
            kind=str(data.get("kind", "intensity")),
        )


AU_COLUMN_SET = frozenset(au.column for au in ACTION_UNITS)


def au_subset(name: str, codes: Sequence[int]) -> TargetSpec:
    """The AU intensities with FACS ``codes`` (each one of OpenFace's 17), in OpenFace order."""
    units = sorted((ACTION_UNITS[au_index(code)] for code in codes), key=lambda unit: au_index(unit.code))
    return TargetSpec(name, tuple(u.column for u in units), tuple(u.label for u in units), AU_MIN, AU_MAX)


FERPLUS_EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
"""The 8 FERPlus classes, in FERPlus order (the paper's CME baseline conditions on their distribution)."""

_EYE_PARTS = ("Blink", "LookDown", "LookIn", "LookOut", "LookUp", "Squint", "Wide")
ARKIT_BLENDSHAPES = (
    *(f"eye{part}{side}" for side in ("Left", "Right") for part in _EYE_PARTS),
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    *(f"mouth{part}{side}" for part in ("Smile", "Frown", "Dimple", "Stretch") for side in ("Left", "Right")),
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    *(f"mouth{part}{side}" for part in ("Press", "LowerDown", "UpperUp") for side in ("Left", "Right")),
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
"""Apple ARKit's 52 face blendshape weights (0..1)."""

PRESETS: dict[str, TargetSpec] = {
    "aus": au_subset("aus", [unit.code for unit in ACTION_UNITS]),
    "disfa": au_subset("disfa", (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)),
    "fera": au_subset("fera", (6, 10, 12, 14, 17)),
    "emotions": TargetSpec("emotions", FERPLUS_EMOTIONS, FERPLUS_EMOTIONS, 0.0, 1.0, "distribution"),
    "arkit": TargetSpec("arkit", ARKIT_BLENDSHAPES, ARKIT_BLENDSHAPES, 0.0, 1.0),
}
"""Named target sets: the paper's 17 AUs, DISFA's 12 and FERA 2015's 5 AUs, FERPlus emotions, ARKit blendshapes."""

DEFAULT_TARGETS = PRESETS["aus"]


def resolve_targets(targets: str | Sequence[str] | Mapping[str, Any] | TargetSpec | None) -> TargetSpec:
    """A spec from a preset name, a spec dict, a spec, or a list of AU columns/codes (``None``: the 17 AUs).

    A list names AU intensity columns (``AU12_r`` or ``AU12``) for an AU subset; other columns need a
    full spec (name, columns, low, high, kind).
    """
    if targets is None:
        return DEFAULT_TARGETS
    if isinstance(targets, TargetSpec):
        return targets
    if isinstance(targets, Mapping):
        return TargetSpec.from_dict(targets)
    if isinstance(targets, str):
        if targets in PRESETS:
            return PRESETS[targets]
        targets = [part.strip() for part in targets.split(",") if part.strip()]
        if len(targets) == 1 and targets[0] not in AU_COLUMN_SET and not targets[0].upper().startswith("AU"):
            raise ValueError(f"unknown targets preset {targets[0]!r}; presets: {', '.join(PRESETS)}")
    codes = []
    for column in targets:
        text = str(column).strip().upper().removesuffix("_R").removeprefix("AU")
        if not text.isdigit():
            raise ValueError(
                f"target column {column!r} is not an AU intensity (AU12_r); give a preset "
                f"({', '.join(PRESETS)}) or a full spec with columns, range and kind"
            )
        codes.append(int(text))
    return au_subset("custom", codes)


def model_targets(targets: str | Mapping[str, Any] | None, num_aus: int) -> TargetSpec:
    """The model's targets: the given spec (``num_aus`` must be its size or the default 17), else the
    17 AUs, else (an older config's other ``num_aus``) that many unnamed intensities on the AU scale."""
    if targets is not None:
        spec = resolve_targets(targets)
        if num_aus not in (NUM_AUS, spec.size):
            raise ValueError(f"num_aus={num_aus} contradicts targets {spec.name!r} of size {spec.size}")
        return spec
    if num_aus == NUM_AUS:
        return DEFAULT_TARGETS
    names = tuple(f"out{index}" for index in range(num_aus))
    return TargetSpec("custom", names, names, AU_MIN, AU_MAX)
