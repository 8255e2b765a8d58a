"""Scoring a naturalness test on rating files with known answers: MOS, 95% CIs, tests, attention checks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cause_pl.evaluation.mos.design import Design, make_design
from cause_pl.evaluation.mos.figure import save_mos_chart
from cause_pl.evaluation.mos.report import csv_text, markdown
from cause_pl.evaluation.mos.score import RatingsError, score
from cause_pl.evaluation.mos.stats import holm, t_quantile, wilcoxon_signed_rank

T_975 = {1: 12.7062047, 9: 2.2621572, 19: 2.0930241, 24: 2.0638986, 39: 2.0226909}
"""Two-sided 95% quantiles of Student's t, from printed tables."""
GOOD = {"A": {"u1": 5, "u2": 4}, "B": {"u1": 2, "u2": 1}, "C": {"u1": 5, "u2": 4}}
"""Each attentive listener's ratings: A and C identical, B clearly worse."""


def write_ratings(path: Path, design: Design, listener: int, table: dict[str, dict[str, int]], honest: bool) -> Path:
    """A rating file as the page downloads it (JSON, or CSV by suffix): checks answered right if ``honest``."""
    rows = []
    for position, key in enumerate(design.playlists[listener], start=1):
        if key in design.checks:
            expected = design.checks[key].expected
            rating = expected if honest else (3 if expected != 3 else 1)
            rows.append({"item": key, "position": position, "rating": rating, "check": True, "expected": expected})
        else:
            item = design.items[key]
            rows.append({"item": key, "position": position, "rating": table[item.system][item.utterance]})
    if path.suffix == ".csv":
        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, ["listener", "item", "position", "rating", "check", "expected"])
            writer.writeheader()
            writer.writerows({"listener": listener, **row} for row in rows)
    else:
        path.write_text(json.dumps({"listener": listener, "ratings": rows}))
    return path


@pytest.fixture
def kit(tmp_path):
    """10 attentive listeners (half JSON, half CSV) and 2 inattentive ones who would flip the result."""
    design = make_design(["A", "B", "C"], ["u1", "u2"], listeners=12, attention_checks=2, seed=11)
    files = [
        write_ratings(tmp_path / f"l{listener}.{'csv' if listener % 2 else 'json'}", design, listener, GOOD, True)
        for listener in range(1, 11)
    ]
    flipped = {"A": {"u1": 1, "u2": 1}, "B": {"u1": 5, "u2": 5}, "C": {"u1": 1, "u2": 1}}
    files += [write_ratings(tmp_path / f"l{n}.json", design, n, flipped, False) for n in (11, 12)]
    return design, files


@pytest.mark.parametrize("df", list(T_975))
def test_t_quantile_matches_the_tables(df):
    assert t_quantile(0.975, df) == pytest.approx(T_975[df], abs=1e-6)
    assert t_quantile(0.025, df) == pytest.approx(-T_975[df], abs=1e-6)


def test_mos_and_cis_by_hand_with_inattentive_listeners_dropped(kit):
    design, files = kit
    result = score(design, files)
    assert result.dropped == [11, 12] and result.listeners == list(range(1, 11))
    by_name = {s.system: s for s in result.systems}
    # 20 ratings per system, ten of each of two values one apart: s = 0.5 * sqrt(20 / 19).
    half = T_975[19] * 0.5 * math.sqrt(20 / 19) / math.sqrt(20)
    for name, mos in (("A", 4.5), ("B", 1.5), ("C", 4.5)):
        assert (by_name[name].ratings, by_name[name].listeners) == (20, 10)
        assert by_name[name].mos == pytest.approx(mos)
        assert (by_name[name].ci_low, by_name[name].ci_high) == pytest.approx((mos - half, mos + half), abs=1e-7)


def test_a_clearly_different_pair_is_significant_and_an_identical_one_is_not(kit):
    design, files = kit
    result = score(design, files)
    pairs = {(p.first, p.second): p for p in result.pairs}
    # A - B is +3 for all 10 listeners: W+ = 55, exact two-sided p = 2 / 2^10; Holm over 3 pairs.
    assert pairs["A", "B"].statistic == 55 and pairs["A", "B"].p_value == pytest.approx(2 / 1024)
    assert pairs["A", "B"].p_holm == pytest.approx(3 * 2 / 1024) and pairs["A", "B"].difference == pytest.approx(3)
    assert result.significant("A", "B") and result.significant("C", "B")
    assert pairs["A", "C"].p_value == 1.0 and not result.significant("A", "C")


def test_a_lenient_attention_threshold_keeps_everyone(kit):
    design, files = kit
    result = score(design, files, max_failed_checks=2)
    assert result.dropped == [] and len(result.listeners) == 12
    assert {s.system: s.ratings for s in result.systems} == {"A": 24, "B": 24, "C": 24}


def test_wilcoxon_exact_with_ties_and_the_normal_approximation():
    # |d| = 1, 2, 2, 3 -> ranks 1, 2.5, 2.5, 4; the negative one has rank 1: W+ = 9 of 10.
    # Sign flips with W+ >= 9: {all +} (10) and {rank 1 negative} (9): 2 of 16; two-sided p = 4/16.
    result = wilcoxon_signed_rank([-1.0, 2.0, 2.0, 3.0, 0.0])
    assert (result.statistic, result.n, result.exact) == (9, 4, True) and result.p_value == pytest.approx(0.25)
    large = wilcoxon_signed_rank(np.arange(1, 61, dtype=float))  # all positive: z = (1830 - 915 - 0.5) / sd
    sd = math.sqrt(60 * 61 * 121 / 24)
    assert not large.exact and large.p_value == pytest.approx(math.erfc((915 - 0.5) / sd / math.sqrt(2)))


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_reports_and_the_figure(kit, tmp_path):
    design, files = kit
    result = score(design, files)
    text = markdown(result)
    assert "| A | 4.50 |" in text and "| A vs B | 10 |" in text and "2 dropped" in text
    rows = list(csv.DictReader(csv_text(result).splitlines()))
    assert [row["system"] for row in rows] == ["A", "B", "C"] and float(rows[1]["mos"]) == 1.5
    path = save_mos_chart(result, tmp_path / "mos.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and 400 <= png.size[0] <= 1500 and 300 <= png.size[1] <= 1000
    assert path.stat().st_size > 5000


def test_unknown_items_and_repeated_listeners_are_one_line_errors(kit, tmp_path):
    design, files = kit
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"listener": 1, "ratings": [{"item": "0123456789", "rating": 4}]}))
    with pytest.raises(RatingsError, match=r"bad\.json: item '0123456789' is not in this kit's manifest"):
        score(design, [bad])
    with pytest.raises(RatingsError, match="listener 2 is also rated in"):
        score(design, [files[1], files[1]])
    bad.write_text(json.dumps({"listener": 1, "ratings": [{"item": design.playlists[1][0], "rating": 7}]}))
    with pytest.raises(RatingsError, match="not a ratings file"):
        score(design, [bad])
