"""``cause-pl table1``'s own checks: usage errors before any work, and a loud caption for a model's NaN."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import cause_pl.cli.table1 as table1_module
from cause_pl.cli.command import UsageError
from cause_pl.metrics.au_metrics import AUMetrics


def test_nan_predictions_are_named_in_the_caption(tmp_path, monkeypatch, capsys):
    metric = AUMetrics(mean_au=torch.full((17,), 1.0))
    target = torch.rand(3, 4, 17, generator=torch.Generator().manual_seed(0)) * 5  # 3 utterances: finite CIs
    pred = target + 0.5
    pred[0, 1, 2] = float("nan")
    metric.update(pred, target, torch.ones(3, 4, dtype=torch.bool))
    report = metric.compute()
    model = SimpleNamespace(hparams=SimpleNamespace(arch="cnn"))
    monkeypatch.setattr(table1_module, "load_cause_checkpoint", lambda path: model)
    monkeypatch.setattr(table1_module, "evaluate_on_shards", lambda *args, **kwargs: report)
    (tmp_path / "cnn.ckpt").write_bytes(b"")
    table1_module.table1(shards=tmp_path, ckpt=[tmp_path / "cnn.ckpt"], out=tmp_path / "t")
    caption = (tmp_path / "t.md").read_text().splitlines()[0]
    assert "WARNING: CNN predicted 1 NaN or infinite AU values" in caption
    assert "nan" not in (tmp_path / "t.csv").read_text().lower()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"device": "banana"}, "not a torch device"),
        ({"batch_size": 0}, "--batch_size must be >= 1, got 0"),
        ({"num_workers": -1}, "--num_workers must be >= 0, got -1"),
    ],
)
def test_bad_flags_are_usage_errors_before_any_work(tmp_path, flags, message):
    with pytest.raises(UsageError, match=message):
        table1_module.table1(shards=tmp_path, ckpt=[tmp_path / "missing.ckpt"], out=tmp_path / "t", **flags)
    assert list(tmp_path.iterdir()) == []
