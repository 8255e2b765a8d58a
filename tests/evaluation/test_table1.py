"""Table 1 on shards read from elsewhere: ``shard_url`` templates give exactly the local numbers.

index.json stays in the folder passed as ``shards``; the shards are copied to another folder and read
through a plain path template and through a ``pipe:cat`` command (as ``pipe:aws s3 cp ... -`` would be).
"""

from __future__ import annotations

import csv
import shutil

import pytest

from cause_pl.evaluation.table1 import evaluate_on_shards, table_paths, table_rows, write_table
from cause_pl.models.cause import load_cause_checkpoint


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
