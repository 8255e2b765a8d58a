"""The naturalness test's design: per-listener, seeded, balanced, blind playlists with attention checks."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cause_pl.evaluation.mos.design import Design, make_design, williams_rows
from cause_pl.evaluation.mos.page import render_page

SYSTEMS = ["mlp", "rnn", "cnn", "dcnn", "cme"]
UTTERANCES = ["u1", "u2"]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10])
def test_williams_rows_are_a_balanced_latin_square(n):
    rows = williams_rows(n)
    assert len(rows) == (2 * n if n % 2 else n)
    assert all(sorted(row) == list(range(n)) for row in rows)
    for position in range(n):  # every item in every position equally often
        assert Counter(row[position] for row in rows) == {item: len(rows) // n for item in range(n)}
    if n > 1:  # first-order carry-over: every ordered pair of neighbours equally often
        neighbours = Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
        assert len(neighbours) == n * (n - 1) and len(set(neighbours.values())) == 1


def test_each_listener_rates_every_pair_once_in_a_listener_specific_order():
    design = make_design(SYSTEMS, UTTERANCES, listeners=10, seed=1)
    assert len(design.items) == 10
    assert {(i.system, i.utterance) for i in design.items.values()} == {(s, u) for s in SYSTEMS for u in UTTERANCES}
    for playlist in design.playlists.values():
        assert sorted(playlist) == sorted(design.items)
    assert len({tuple(p) for p in design.playlists.values()}) == 10  # ten listeners, ten different orders


def test_positions_are_balanced_over_a_full_cycle_of_listeners():
    design = make_design(SYSTEMS, UTTERANCES, listeners=20, seed=2)  # 10 items: a cycle is 10 listeners
    for position in range(10):
        items = Counter(design.playlists[listener][position] for listener in design.playlists)
        assert set(items.values()) == {2}
        systems = Counter(design.items[key].system for key in items.elements())
        assert set(systems.values()) == {4}  # each system equally often in each position


def test_per_listener_subsets_rate_every_item_equally_often():
    design = make_design(SYSTEMS, UTTERANCES, listeners=10, per_listener=4, seed=3)
    assert all(len(playlist) == 4 and len(set(playlist)) == 4 for playlist in design.playlists.values())
    assert set(Counter(key for p in design.playlists.values() for key in p).values()) == {4}


def test_the_same_seed_gives_the_same_design_and_another_seed_another():
    first = make_design(SYSTEMS, UTTERANCES, listeners=6, attention_checks=2, seed=7)
    assert make_design(SYSTEMS, UTTERANCES, listeners=6, attention_checks=2, seed=7) == first
    assert make_design(SYSTEMS, UTTERANCES, listeners=6, attention_checks=2, seed=8).playlists != first.playlists
    assert Design.from_manifest(json.loads(json.dumps(first.to_manifest()))) == first


def test_attention_checks_per_listener_never_first_and_never_the_middle_rating():
    design = make_design(SYSTEMS, UTTERANCES, listeners=8, attention_checks=3, seed=4)
    assert len(design.checks) == 24
    for listener, playlist in design.playlists.items():
        checks = [key for key in playlist if key in design.checks]
        assert len(playlist) == 13 and len(checks) == 3 and playlist[0] not in design.checks
        assert all(design.checks[key].listener == listener for key in checks)
    assert {check.expected for check in design.checks.values()} <= {1, 2, 4, 5}
    assert len({check.video for check in design.checks.values()}) == 1  # one still video, rendered once


def test_ids_and_the_page_are_blind():
    design = make_design(SYSTEMS, UTTERANCES, listeners=4, attention_checks=1, seed=5)
    ids = [*design.items, *design.checks]
    assert len(set(ids)) == len(ids) and all(len(key) == 10 and int(key, 16) >= 0 for key in ids)
    assert all(item.video == f"videos/{item.id}.mp4" for item in design.items.values())
    html = render_page(design, kit="k1")
    assert all(system not in html.lower() for system in SYSTEMS) and "http" not in html  # no names, no network
    config = json.loads(html.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert [entry["id"] for entry in config["playlists"]["1"]] == design.playlists[1]
    assert config["scale"] == {"5": "Excellent", "4": "Good", "3": "Fair", "2": "Poor", "1": "Bad"}


@pytest.mark.parametrize(
    ("systems", "utterances", "listeners", "per_listener", "checks", "message"),
    [
        ([], ["u"], 1, 0, 0, "one or more systems"),
        (["a", "a"], ["u"], 1, 0, 0, "each named once"),
        (["a"], ["u"], 0, 0, 0, "at least one listener"),
        (["a"], ["u"], 1, 2, 0, "per_listener must be"),
        (["a"], ["u"], 1, 0, -1, "attention_checks must be"),
    ],
)
def test_bad_designs_are_refused(systems, utterances, listeners, per_listener, checks, message):
    with pytest.raises(ValueError, match=message):
        make_design(systems, utterances, listeners, per_listener, checks)
