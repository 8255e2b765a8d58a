"""Who sees what, in which order: the blind, per-listener randomised playlists of a naturalness test.

Every (system, utterance) pair is one item with an opaque id (its video is ``videos/<id>.mp4``). The
items are laid out in a Williams design (a Latin square balanced for first-order carry-over; doubled for
an odd number of items): over each full cycle of rows (``n`` listeners, ``2n`` when ``n`` is odd) every
item is shown exactly once in every position. Listener ``l`` takes row ``l`` of the seeded shuffle of
rows, truncated to ``per_listener`` items if given (each item is then rated ``per_listener`` times per
cycle). Attention checks, still faces whose caption says which rating to give, go at seeded random
positions (never first). Everything follows from ``seed``: the same arguments give the same design.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cause_pl.evaluation.mos import SCALE

CHECK_RATINGS = (1, 2, 4, 5)
"""Ratings an attention check asks for (never the middle, the lazy choice)."""


@dataclass(frozen=True)
class Item:
    """One rated video: ``system`` animating ``utterance``."""

    id: str
    system: str
    utterance: str

    @property
    def video(self) -> str:
        """Path of the video relative to the kit folder."""
        return f"videos/{self.id}.mp4"


@dataclass(frozen=True)
class Check:
    """One attention check of ``listener``: the still-face video, to be rated ``expected``."""

    id: str
    listener: int
    expected: int
    video: str

    @property
    def caption(self) -> str:
        """What the page shows over the video."""
        return f"Attention check: please rate this video {self.expected} ({SCALE[self.expected]})."


@dataclass(frozen=True)
class Design:
    """Items, attention checks and each listener's playlist (item and check ids in order)."""

    seed: int
    systems: tuple[str, ...]
    utterances: tuple[str, ...]
    items: dict[str, Item]
    checks: dict[str, Check] = field(default_factory=dict)
    playlists: dict[int, list[str]] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, Any]:
        """The JSON-ready manifest that scoring reads (item id -> system and utterance, checks, playlists)."""
        return {
            "format": "cause-pl-mos/1",
            "seed": self.seed,
            "systems": list(self.systems),
            "utterances": list(self.utterances),
            "items": {
                i.id: {"system": i.system, "utterance": i.utterance, "video": i.video} for i in self.items.values()
            },
            "checks": {
                c.id: {"listener": c.listener, "expected": c.expected, "video": c.video} for c in self.checks.values()
            },
            "playlists": {str(listener): ids for listener, ids in self.playlists.items()},
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Design:
        """The design a manifest describes (KeyError / TypeError / ValueError when it is malformed)."""
        items = {key: Item(key, str(v["system"]), str(v["utterance"])) for key, v in manifest["items"].items()}
        checks = {
            key: Check(key, int(v["listener"]), int(v["expected"]), str(v["video"]))
            for key, v in manifest["checks"].items()
        }
        playlists = {int(listener): [str(i) for i in ids] for listener, ids in manifest["playlists"].items()}
        return cls(
            int(manifest["seed"]), tuple(manifest["systems"]), tuple(manifest["utterances"]), items, checks, playlists
        )

    def page_playlists(self) -> dict[str, list[dict[str, Any]]]:
        """What the listening page may know: per listener, ids, videos and check captions; no system names."""
        pages: dict[str, list[dict[str, Any]]] = {}
        for listener, ids in self.playlists.items():
            entries: list[dict[str, Any]] = []
            for key in ids:
                if key in self.checks:
                    check = self.checks[key]
                    entries.append(
                        {"id": key, "video": check.video, "expected": check.expected, "caption": check.caption}
                    )
                else:
                    entries.append({"id": key, "video": self.items[key].video})
            pages[str(listener)] = entries
        return pages


def williams_rows(n: int) -> list[list[int]]:
    """Rows of a Williams design for ``n`` treatments: ``n`` rows (``2n`` when ``n`` is odd), each a
    permutation; every treatment appears once per position per ``n`` (even) rows and follows every other
    treatment equally often."""
    if n < 1:
        raise ValueError(f"need at least one item, got {n}")
    first, low, high = [0], 1, n - 1
    for index in range(1, n):
        if index % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = [[(value + shift) % n for value in first] for shift in range(n)]
    return rows + [row[::-1] for row in rows] if n % 2 else rows


def make_design(
    systems: Sequence[str],
    utterances: Sequence[str],
    listeners: int,
    per_listener: int = 0,
    attention_checks: int = 0,
    seed: int = 0,
) -> Design:
    """Draw the design (see the module docstring); ``per_listener`` 0 means every item."""
    for name, values in (("system", systems), ("utterance", utterances)):
        if not values or len(set(values)) != len(values):
            raise ValueError(f"need one or more {name}s, each named once, got {list(values)}")
    count = len(systems) * len(utterances)
    if listeners < 1:
        raise ValueError(f"need at least one listener, got {listeners}")
    if not 0 <= per_listener <= count:
        raise ValueError(f"per_listener must be 0 (all) .. {count} (the number of items), got {per_listener}")
    if attention_checks < 0:
        raise ValueError(f"attention_checks must be >= 0, got {attention_checks}")
    rng = random.Random(seed)
    ids = _opaque_ids(rng, count + listeners * attention_checks)
    pairs = [(system, utterance) for system in systems for utterance in utterances]
    rng.shuffle(pairs)
    items = [Item(ids[index], system, utterance) for index, (system, utterance) in enumerate(pairs)]
    rows = williams_rows(count)
    rng.shuffle(rows)
    still = "videos/" + _opaque_ids(rng, 1, avoid=set(ids))[0] + ".mp4"
    checks: dict[str, Check] = {}
    playlists: dict[int, list[str]] = {}
    for listener in range(1, listeners + 1):
        row = rows[(listener - 1) % len(rows)][: per_listener or count]
        playlist = [items[index].id for index in row]
        for _ in range(attention_checks):
            key = ids[len(items) + len(checks)]
            checks[key] = Check(key, listener, rng.choice(CHECK_RATINGS), still)
            playlist.insert(rng.randint(1, len(playlist)), key)
        playlists[listener] = playlist
    return Design(seed, tuple(systems), tuple(utterances), {item.id: item for item in items}, checks, playlists)


def still_video(design: Design) -> str | None:
    """The attention checks' video (relative path), or None without checks."""
    return next((check.video for check in design.checks.values()), None)


def _opaque_ids(rng: random.Random, count: int, avoid: set[str] | None = None) -> list[str]:
    """``count`` distinct random 10-hex-digit ids that say nothing about what they name."""
    taken, ids = set(avoid or ()), list[str]()
    while len(ids) < count:
        key = f"{rng.getrandbits(40):010x}"
        if key not in taken:
            taken.add(key)
            ids.append(key)
    return ids
