"""Table 1 on shards read from elsewhere: ``shard_url`` templates give exactly the local numbers.

index.json stays in the folder passed as ``shards``; the shards are copied to another folder and read
through a plain path template and through a ``pipe:cat`` command (as ``pipe:aws s3 cp ... -`` would be).
"""

from __future__ import annotations

import shutil

import pytest

from cause_pl.evaluation.table1 import evaluate_on_shards, table_rows
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
