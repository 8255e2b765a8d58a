"""Where outputs go: a missing parent folder (made), a folder where a file is asked for, a file in the way
of a folder, an earlier output that a failed run must leave byte for byte, and Table 1's suffixes.
"""

from __future__ import annotations

import json

import pytest

from cause_pl.cli.command import EXIT_DATA, EXIT_OS
from tests.hostile.argv import animate, estimate, gan_eval, table1
from tests.hostile.harness import PREVIOUS_OUTPUT, Case, check_case, params


def unchanged(*names):
    def check(kit, work, stdout):
        for name in names:
            assert (work / name).read_bytes() == PREVIOUS_OUTPUT

    return check


def table_files(stem):
    def check(kit, work, stdout):
        assert (work / f"{stem}.md").read_text().startswith("Table 1: test split")
        assert (work / f"{stem}.csv").read_text().splitlines()[0].startswith("method,mae")

    return check


def scores(kit, work, stdout):
    assert json.loads((work / "sub" / "s.json").read_text())["faces"] > 0


CASES = [
    Case("estimate-out-missing-parent-is-made", lambda k, w: estimate(k, w, "--out", w / "new" / "aus.csv"), 0,
         makes=["new", "new/aus.csv"]),
    Case("estimate-out-a-directory", lambda k, w: estimate(k, w, "--out", w / "results"), EXIT_OS,
         ["--out: is a directory", "results"], keep=["results/"]),
    Case("estimate-failure-keeps-earlier-csv", lambda k, w: ["estimate", k.nan_wav, *estimate(k, w)[2:]], EXIT_DATA,
         ["nan.wav"], keep=["aus.csv"]),
    Case("animate-out-a-directory", lambda k, w: animate(k, w, "--out", w / "video"), EXIT_OS,
         ["--out: is a directory, not a file", "video"], keep=["video/"]),
    Case("animate-strip-a-directory", lambda k, w: animate(k, w, "--strip", w / "strip.png"), EXIT_OS,
         ["--strip: is a directory, not a file", "strip.png"], keep=["strip.png/"]),
    Case("animate-failure-keeps-earlier-outputs",
         lambda k, w: animate(k, w, "--au_csv", w / "aus.csv", face=k.bomb_png), EXIT_DATA, ["bomb.png"],
         keep=["out.mp4", "aus.csv"]),
    Case("animate-outputs-in-missing-folders", lambda k, w: animate(
        k, w, "--out", w / "a" / "o.mp4", "--au_csv", w / "b" / "aus.csv", "--strip", w / "c" / "s.png",
        audio=k.short_m4a), 0, makes=["a", "a/o.mp4", "b", "b/aus.csv", "c", "c/s.png"]),
    Case("table1-out-keeps-its-suffix", lambda k, w: table1(k, w, "--out", w / "results.v2"), 0,
         makes=["results.v2.md", "results.v2.csv"], check=table_files("results.v2")),
    Case("table1-out-a-folder-name", lambda k, w: table1(k, w, "--out", w / "tables"), 0, keep=["tables/"],
         makes=["tables.md", "tables.csv"], check=table_files("tables")),
    Case("table1-md-is-a-directory", table1, EXIT_OS, ["--out: is a directory, not a file", "t1.md"], keep=["t1.md/"]),
    Case("table1-out-under-a-file", lambda k, w: table1(k, w, "--out", k.plain_file / "t1"), EXIT_OS,
         ["a file is in the way of a folder", "plain_file"]),
    Case("table1-failure-keeps-earlier-tables", lambda k, w: table1(k, w, shards=k.vox_truncated), EXIT_DATA,
         ["vox_truncated"], keep=["t1.md", "t1.csv"]),
    Case("table1-success-replaces-earlier-tables", table1, 0, keep=["t1.md", "t1.csv"], check=table_files("t1")),
    Case("ganimation-eval-out-missing-parent", lambda k, w: gan_eval(k, w, "--out", w / "sub" / "s.json"), 0,
         makes=["sub", "sub/s.json"], check=scores),
    Case("ganimation-eval-out-a-directory", lambda k, w: gan_eval(k, w, "--out", w / "scores"), EXIT_OS,
         ["--out: is a directory, not a file", "scores"], keep=["scores/"]),
    Case("ganimation-eval-failure-keeps-earlier-json", lambda k, w: gan_eval(k, w, shards=k.faces_truncated),
         EXIT_DATA, ["faces_truncated"], keep=["s.json"]),
    Case("sweep-out-under-a-file", lambda k, w: ["sweep", k.grid_sweep, "--out", k.plain_file / "runs"], EXIT_OS,
         ["plain_file"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_output_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
