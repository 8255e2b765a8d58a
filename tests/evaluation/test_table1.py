"""Table 1 on shards read from elsewhere: ``shard_url`` templates give exactly the local numbers.

index.json stays in the folder passed as ``shards``; the shards are copied to another folder and read
through a plain path template and through a ``pipe:cat`` command (as ``pipe:aws s3 cp ... -`` would be).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tarfile

import pytest

from cause_pl.evaluation.table1 import (
    IncompleteEvaluationError,
    evaluate_on_shards,
    model_names,
    table_paths,
    table_rows,
    write_table,
)
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.shards.index import DatasetIndex
from tests.cli.test_config_files import cause_pl


@pytest.mark.parametrize("template", ["{bucket}/{{name}}", "pipe:cat {bucket}/{{name}}"])
def test_shard_url_gives_the_local_table(quick_demo, tmp_path, template):
    shards = quick_demo.files["data"] / "speech_au"
    model = load_cause_checkpoint(quick_demo.files["cause_checkpoint"])
    manifest, bucket = tmp_path / "manifest", tmp_path / "bucket"
    manifest.mkdir()
    bucket.mkdir()
    shutil.copy(shards / "index.json", manifest)
    for shard in shards.glob("*.tar"):
        shutil.copy(shard, bucket)
    local = evaluate_on_shards(model, shards, "val", batch_size=4)
    moved = evaluate_on_shards(model, manifest, "val", batch_size=4, shard_url=template.format(bucket=bucket))
    assert moved.num_utterances == local.num_utterances > 0
    assert table_rows({"CNN": moved}) == table_rows({"CNN": local})


# --- write_table ---------------------------------------------------------------------------------


def rows(mae: float) -> list[dict[str, object]]:
    return [
        {"method": method, "mae": mae + i, "MAE [95% CI]": f"{mae + i:.2f}", "MSE [95% CI]": "0.50"}
        for i, method in enumerate(["Zero", "Mean", "CNN"])
    ]


def test_write_table_appends_md_and_csv_keeping_the_given_suffix(tmp_path):
    unrelated = tmp_path / "results.csv"
    unrelated.write_text("someone else's file")
    markdown = write_table(rows(1.0), "Table 1", tmp_path / "results.v2")
    assert table_paths(tmp_path / "results.v2") == (tmp_path / "results.v2.md", tmp_path / "results.v2.csv")
    assert (tmp_path / "results.v2.md").read_text() == markdown
    assert markdown.startswith("Table 1\n") and "| CNN | 3.00 | 0.50 |" in markdown
    with open(tmp_path / "results.v2.csv", newline="") as stream:
        written = list(csv.DictReader(stream))
    assert [row["method"] for row in written] == ["Zero", "Mean", "CNN"] and written[2]["mae"] == "3.0"
    assert unrelated.read_text() == "someone else's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.v2.csv", "results.v2.md"]


def test_write_table_with_a_plain_name_and_a_new_folder(tmp_path):
    write_table(rows(1.0), "Table 1", tmp_path / "new" / "table1")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["table1.csv", "table1.md"]


def test_failed_write_table_keeps_the_previous_files(tmp_path, monkeypatch):
    out = tmp_path / "table1"
    write_table(rows(1.0), "old", out)
    before = {path: path.read_bytes() for path in table_paths(out)}

    def first_row_then_disk_full(self, rows_to_write):
        self.writerow(next(iter(rows_to_write)))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", first_row_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_table(rows(2.0), "new", out)
    assert {path: path.read_bytes() for path in table_paths(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table1.csv", "table1.md"]


# --- damaged shards: exact or loud ------------------------------------------------------------------


def damaged_copy(shards, tmp_path):
    """A copy of the speech shards whose first val shard is cut inside its last sample: (root, shard)."""
    root = tmp_path / "damaged"
    shutil.copytree(shards, root)
    shard = root / json.loads((root / "index.json").read_text())["splits"]["val"]["shards"][0]["name"]
    with tarfile.open(shard) as archive:
        members = archive.getmembers()
    keys = [m.name.split(".")[0] for m in members]
    last = members[keys.index(keys[-1])]  # first member of the last sample
    with open(shard, "r+b") as stream:
        stream.truncate(last.offset_data + last.size // 2)
    return root, shard


def test_damaged_shard_fails_naming_it_unless_missing_is_allowed(quick_demo, tmp_path, capsys):
    model = load_cause_checkpoint(quick_demo.files["cause_checkpoint"])
    root, shard = damaged_copy(quick_demo.files["data"] / "speech_au", tmp_path)
    expected = DatasetIndex.load(root).num_samples("val")
    partial = evaluate_on_shards(model, root, "val", batch_size=4, allow_missing=True)
    lost = partial.unread_utterances
    assert lost >= 1 and partial.num_utterances <= expected - lost
    message = (
        rf"val split: {lost} of {expected} samples listed in index.json .*damaged shard\(s\): {re.escape(str(shard))}\)"
    )
    with pytest.raises(IncompleteEvaluationError, match=message):
        evaluate_on_shards(model, root, "val", batch_size=4)
    complete = evaluate_on_shards(model, quick_demo.files["data"] / "speech_au", "val", batch_size=4)
    assert complete.unread_utterances == 0
    # The command line: one line and exit 1 by default; --allow_missing states the skip in the caption.
    args = ["table1", "--shards", root, "--ckpt", quick_demo.files["cause_checkpoint"], "--split", "val"]
    code, _, err = cause_pl(capsys, *args, "--out", tmp_path / "strict")
    assert code == 1 and re.search(message, err) and not (tmp_path / "strict.md").exists()
    code, _, err = cause_pl(capsys, *args, "--out", tmp_path / "lenient", "--allow_missing")
    assert code == 0, err
    caption = f"INCOMPLETE: {lost} utterances listed in index.json were unreadable"
    assert caption in (tmp_path / "lenient.md").read_text()


def test_damaged_shard_is_named_when_dataloader_workers_read_it(quick_demo, tmp_path):
    model = load_cause_checkpoint(quick_demo.files["cause_checkpoint"])
    root, shard = damaged_copy(quick_demo.files["data"] / "speech_au", tmp_path)
    with pytest.raises(IncompleteEvaluationError, match=rf"damaged shard\(s\): {re.escape(str(shard))}\)"):
        evaluate_on_shards(model, root, "val", batch_size=4, num_workers=2)


def test_ganimation_eval_fails_on_a_damaged_shard_unless_missing_is_allowed(quick_demo, tmp_path, capsys):
    root, shard = damaged_copy(quick_demo.files["data"] / "faces", tmp_path)
    expected = DatasetIndex.load(root).num_samples("val")
    args = ["ganimation-eval", "--ckpt", quick_demo.files["ganimation_checkpoint"], "--shards", root]
    args += ["--reader_steps", "2", "--batch_size", "4"]
    code, _, err = cause_pl(capsys, *args, "--out", tmp_path / "strict.json")
    assert code == 1 and not (tmp_path / "strict.json").exists()
    assert re.search(rf"val split: \d+ of {expected} samples .*damaged shard\(s\): {re.escape(str(shard))}\)", err)
    code, _, err = cause_pl(capsys, *args, "--out", tmp_path / "lenient.json", "--allow_missing")
    assert code == 0, err
    scores = json.loads((tmp_path / "lenient.json").read_text())
    assert scores["skipped_faces"] >= 1 and scores["faces"] + scores["skipped_faces"] == expected


def test_rows_are_named_by_architecture_and_look_ahead(tmp_path):
    """Causal nets carry their look-ahead; two checkpoints of one kind add their file names."""
    models = [
        CAUSERegressor(arch="cnn"),
        CAUSERegressor(arch="causal_cnn", lookahead=0),
        CAUSERegressor(arch="causal_cnn"),
    ]
    paths = [tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "c.ckpt"]
    assert model_names(paths, models) == ["CNN", "CAUSAL_CNN L=0", "CAUSAL_CNN L=2"]
    twins = [CAUSERegressor(arch="causal_dcnn", lookahead=5), CAUSERegressor(arch="causal_dcnn", lookahead=5)]
    assert model_names(paths[:2], twins) == ["CAUSAL_DCNN L=5 (a)", "CAUSAL_DCNN L=5 (b)"]
