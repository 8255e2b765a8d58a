"""Hostile shard folders for ``table1`` and ``ganimation-eval``: damaged ``index.json`` and damaged shards.

Each damaged copy is made from the demo's shards (:mod:`tests.hostile.shards`). A broken index is one
line naming index.json; a split whose shards cannot all be read is exact or loud (``evaluation/coverage.py``):
how many samples were missing and which shard, or with ``--allow_missing`` the readable ones.
"""

from __future__ import annotations

import pytest

from cause_pl.cli.command import EXIT_DATA, EXIT_OS
from tests.hostile.argv import gan_eval, table1
from tests.hostile.harness import Case, check_case, params


def table1_on(name, *more):
    return lambda k, w: table1(k, w, *more, shards=getattr(k, name))


def gan_eval_on(name, *more):
    return lambda k, w: gan_eval(k, w, *more, shards=getattr(k, name))


def damaged(name, missing, shard):
    """Fragments of the coverage error: the folder, the count and the damaged shard."""
    return lambda k, w: [getattr(k, name), f"{missing} samples listed in index.json could not be read", shard]


def table_says(fragment):
    def check(kit, work, stdout):
        assert fragment in (work / "t1.md").read_text()
        assert "nan" not in (work / "t1.csv").read_text().lower()

    return check


CASES = [
    Case("table1-index-not-json", table1_on("vox_not_json"), EXIT_DATA, ["vox_not_json/index.json", "not valid JSON"]),
    Case("table1-index-without-splits", table1_on("vox_no_splits"), EXIT_DATA,
         ["vox_no_splits/index.json", "'splits' is none"]),
    Case("table1-index-a-json-list", table1_on("vox_list_index"), EXIT_DATA,
         ["vox_list_index/index.json", "a JSON list"]),
    Case("table1-index-schema-9", table1_on("vox_version_9"), EXIT_DATA, ["schema version 9, expected 1"]),
    Case("table1-index-without-test-split", table1_on("vox_no_test"), EXIT_DATA,
         ["vox_no_test", "no split 'test'; available: ['train', 'val']"]),
    Case("table1-index-entry-without-count", table1_on("vox_entry_without_count"), EXIT_DATA,
         ["vox_entry_without_count/index.json", "split 'test': 'shards' must be a list of"]),
    Case("table1-split-lists-a-missing-shard", table1_on("vox_missing_shard"), EXIT_DATA,
         damaged("vox_missing_shard", "4 of 8", "speech_au-test-000000.tar")),
    Case("table1-truncated-shard", table1_on("vox_truncated"), EXIT_DATA,
         damaged("vox_truncated", "3 of 8", "speech_au-test-000000.tar")),
    Case("table1-sample-with-wrong-shapes", table1_on("vox_wrong_shapes"), EXIT_DATA,
         damaged("vox_wrong_shapes", "1 of 8", "speech_au-test-000000.tar")),
    Case("table1-sample-with-nan-mel", table1_on("vox_nan_mel"), EXIT_DATA,
         damaged("vox_nan_mel", "1 of 8", "speech_au-test-000000.tar")),
    Case("table1-sample-with-nan-au", table1_on("vox_nan_au"), EXIT_DATA,
         damaged("vox_nan_au", "1 of 8", "speech_au-test-000000.tar")),
    Case("table1-nan-sample-allow-missing", table1_on("vox_nan_mel", "--allow_missing"), 0, makes=["t1.md", "t1.csv"],
         check=table_says("INCOMPLETE: 1 utterances")),
    Case("table1-missing-shard-with-workers", table1_on("vox_missing_shard", "--num_workers", "2"), EXIT_DATA,
         damaged("vox_missing_shard", "4 of 8", "speech_au-test-000000.tar")),
    Case("table1-empty-folder", table1_on("empty_shards"), EXIT_DATA, ["empty/index.json", "no index.json"]),
    Case("table1-missing-folder", lambda k, w: table1(k, w, shards=w / "nope"), EXIT_OS,
         lambda k, w: ["no such shard folder", w / "nope"]),
    Case("table1-file-as-shards", lambda k, w: table1(k, w, shards=k.plain_file), EXIT_OS,
         ["not a shard folder", "plain_file"]),
    Case("table1-shard-url-without-name", table1_on("vox", "--shard_url", "/data/vox.tar"), EXIT_DATA,
         ["shard_url='/data/vox.tar' has no {name} placeholder"]),
    Case("ganimation-eval-truncated-shard", gan_eval_on("faces_truncated"), EXIT_DATA,
         damaged("faces_truncated", "5 of 20", "faces-val-000000.tar")),
    Case("ganimation-eval-face-with-nan-au", gan_eval_on("faces_nan_au"), EXIT_DATA,
         damaged("faces_nan_au", "1 of 20", "faces-val-000000.tar")),
    Case("ganimation-eval-face-not-jpeg", gan_eval_on("faces_not_jpeg"), EXIT_DATA,
         damaged("faces_not_jpeg", "1 of 20", "faces-val-000000.tar")),
    Case("ganimation-eval-speech-shards", gan_eval_on("vox"), EXIT_DATA,
         ["holds 'speech_au' shards; FaceAUDataModule needs 'faces' shards"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_shard_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
