"""Target specs: the presets, resolving names and column lists, and what a malformed spec says."""

from __future__ import annotations

import pytest

from cause_pl.au import AU_COLUMNS
from cause_pl.targets import ARKIT_BLENDSHAPES, DEFAULT_TARGETS, PRESETS, TargetSpec, model_targets, resolve_targets


def test_presets_have_the_published_sizes_and_columns() -> None:
    assert {name: spec.size for name, spec in PRESETS.items()} == {
        "aus": 17,
        "disfa": 12,
        "fera": 5,
        "emotions": 8,
        "arkit": 52,
    }
    assert DEFAULT_TARGETS.columns == AU_COLUMNS and DEFAULT_TARGETS.is_aus
    assert PRESETS["fera"].labels == ("AU06", "AU10", "AU12", "AU14", "AU17")
    assert PRESETS["emotions"].kind == "distribution" and PRESETS["emotions"].columns[:2] == ("neutral", "happiness")
    assert len(set(ARKIT_BLENDSHAPES)) == 52 and "jawOpen" in ARKIT_BLENDSHAPES
    assert not PRESETS["arkit"].is_aus and PRESETS["disfa"].is_aus


@pytest.mark.parametrize("given", ["AU25_r,AU12", ["AU12_r", "AU25"], [25, 12]])
def test_au_columns_resolve_to_a_subset_in_openface_order(given: object) -> None:
    spec = resolve_targets(given)  # type: ignore[arg-type]
    assert spec.columns == ("AU12_r", "AU25_r") and spec.labels == ("AU12", "AU25") and spec.is_aus


def test_a_spec_round_trips_through_its_dict() -> None:
    for spec in PRESETS.values():
        assert TargetSpec.from_dict(spec.to_dict()) == spec
        assert resolve_targets(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("happiness", "unknown targets preset 'happiness'"),
        (["AU12_r", "jawOpen"], "'jawOpen' is not an AU intensity"),
        ([13], "AU13 is not one of the 17"),
        ({"columns": ["a", "a"], "low": 0, "high": 1}, "repeated columns"),
        ({"columns": ["a", "b"], "low": 0, "high": 2, "kind": "distribution"}, "a distribution's range is 0..1"),
        ({"columns": ["a"], "low": 1, "high": 1}, "need low < high"),
        ({"columns": ["a"], "low": 0, "high": 1, "kind": "ordinal"}, "kind 'ordinal'"),
        ({"columns": ["a"], "low": 0, "high": 1, "scale": 2}, "unknown target spec keys"),
    ],
)
def test_bad_targets_say_what_is_wrong(given: object, problem: str) -> None:
    with pytest.raises((ValueError, KeyError), match=problem):
        resolve_targets(given)  # type: ignore[arg-type]


def test_a_model_takes_the_targets_size_and_old_configs_keep_working() -> None:
    assert model_targets(None, 17) == DEFAULT_TARGETS
    assert model_targets("emotions", 17).size == 8  # the default num_aus gives way
    assert model_targets("emotions", 8).size == 8
    legacy = model_targets(None, 3)
    assert legacy.columns == ("out0", "out1", "out2") and (legacy.low, legacy.high) == (0.0, 5.0)
    with pytest.raises(ValueError, match="num_aus=5 contradicts targets 'emotions' of size 8"):
        model_targets("emotions", 5)
