"""AUMetrics against an independent numpy reference computed over valid frames."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pytest
import torch

from cause_pl.au import AU_LABELS
from cause_pl.metrics.au_metrics import AUMetrics
from cause_pl.metrics.report import AUReport

K = 17
Z = NormalDist().inv_cdf(0.975)
METRICS = ("mae", "mse", "pcc", "ccc")


def make_utterances(seed: int, count: int, max_frames: int = 40, num_aus: int = K) -> list[dict]:
    """Utterances of random length with face-tracking gaps; targets on the 0..5 AU scale."""
    rng = np.random.default_rng(seed)
    utterances = []
    for _ in range(count):
        frames = int(rng.integers(3, max_frames + 1))
        target = rng.uniform(0.0, 5.0, (frames, num_aus)) * rng.uniform(0.2, 1.0, num_aus)
        noise_scale = rng.uniform(0.1, 1.5)  # utterances differ: the CI has something to measure
        pred = target + noise_scale * rng.standard_normal((frames, num_aus)) + rng.normal(0, 0.3)
        valid = rng.random(frames) > 0.2
        valid[rng.integers(frames)] = True
        utterances.append({"pred": pred, "target": target, "valid": valid})
    return utterances


def to_batch(
    utterances: list[dict], frames: int | None = None, dtype=torch.float64, pad_value: float = float("nan")
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad utterances to one batch; padding holds ``pad_value`` and is masked out."""
    frames = frames or max(len(u["valid"]) for u in utterances)
    shape = (len(utterances), frames, utterances[0]["target"].shape[1])
    pred, target = np.full(shape, pad_value), np.full(shape, pad_value)
    mask = np.zeros(shape[:2], dtype=bool)
    for row, u in enumerate(utterances):
        length = len(u["valid"])
        pred[row, :length], target[row, :length], mask[row, :length] = u["pred"], u["target"], u["valid"]
    return (torch.tensor(pred, dtype=dtype), torch.tensor(target, dtype=dtype), torch.from_numpy(mask))


def reference_scores(utterances: list[dict], predictor=lambda u: u["pred"]) -> dict[str, np.ndarray]:
    """Per-AU MAE, MSE, PCC, CCC pooled over the valid frames of all utterances (two-pass numpy)."""
    y = np.concatenate([u["target"][u["valid"]] for u in utterances])
    p = np.concatenate([np.broadcast_to(predictor(u), u["target"].shape)[u["valid"]] for u in utterances])
    dy, dp = y - y.mean(0), p - p.mean(0)
    cov = (dy * dp).mean(0)
    return {
        "mae": np.abs(p - y).mean(0),
        "mse": ((p - y) ** 2).mean(0),
        "pcc": np.array([np.corrcoef(y[:, k], p[:, k])[0, 1] for k in range(y.shape[1])]),
        "ccc": 2 * cov / (y.var(0) + p.var(0) + (y.mean(0) - p.mean(0)) ** 2),
    }


def per_au(report: AUReport, predictor: str, metric: str, part: str = "value") -> np.ndarray:
    scores = report.predictors[predictor].per_au
    return np.array([getattr(getattr(scores[label], metric), part) for label in report.labels])


def run(utterances: list[dict], batch_size: int | None = None, **kwargs) -> AUReport:
    metric = AUMetrics(**kwargs)
    step = batch_size or len(utterances)
    for start in range(0, len(utterances), step):
        metric.update(*to_batch(utterances[start : start + step]))
    return metric.compute()


def assert_reports_close(a: AUReport, b: AUReport, rtol: float = 1e-12) -> None:
    flat_a, flat_b = a.as_flat_dict(), b.as_flat_dict()
    assert flat_a.keys() == flat_b.keys()
    np.testing.assert_allclose(list(flat_a.values()), list(flat_b.values()), rtol=rtol, atol=1e-13)


def test_model_scores_match_numpy_reference():
    utterances = make_utterances(seed=0, count=12)
    report = run(utterances)
    expected = reference_scores(utterances)
    for metric in METRICS:
        np.testing.assert_allclose(per_au(report, "model", metric), expected[metric], rtol=1e-10)
        assert getattr(report.model.overall, metric).value == pytest.approx(expected[metric].mean(), rel=1e-10)
    y = np.concatenate([u["target"][u["valid"]] for u in utterances])
    p = np.concatenate([u["pred"][u["valid"]] for u in utterances])
    assert report.model.overall.mae.value == pytest.approx(np.abs(p - y).sum() / p.size, rel=1e-10)
    assert report.num_frames == len(y)
    assert report.num_utterances == len(utterances)


def test_masked_and_padded_frames_change_nothing():
    utterances = make_utterances(seed=1, count=6)
    reference = AUMetrics()
    reference.update(*to_batch(utterances, pad_value=0.0))
    metric = AUMetrics()
    pred, target, mask = to_batch(utterances, frames=60, pad_value=float("nan"))
    pred[~mask], target[~mask] = 1e6, float("inf")
    metric.update(pred, target, mask)
    assert_reports_close(metric.compute(), reference.compute())


def test_non_finite_targets_on_valid_frames_are_left_out_and_counted():
    utterances = make_utterances(seed=4, count=6)
    clean = run(utterances, mean_au=torch.full((K,), 2.0))
    poisoned = [dict(u) for u in utterances]
    target = poisoned[2]["target"] = poisoned[2]["target"].copy()
    frames = np.flatnonzero(poisoned[2]["valid"])[:3]
    target[frames, 5] = [float("nan"), float("inf"), float("nan")]
    report = run(poisoned, mean_au=torch.full((K,), 2.0))
    assert report.masked_targets == 3 and clean.masked_targets == 0
    assert all(math.isfinite(value) for value in report.as_flat_dict().values())
    others = [k for k in range(K) if k != 5]
    for metric in METRICS:
        for predictor in ("model", "zero", "mean"):
            np.testing.assert_allclose(
                per_au(report, predictor, metric)[others], per_au(clean, predictor, metric)[others], rtol=1e-12
            )
    # AU 5 is scored as if those three frames were invalid.
    without = [dict(u) for u in utterances]
    without[2]["valid"] = without[2]["valid"].copy()
    without[2]["valid"][frames] = False
    expected = reference_scores(without)
    for metric in METRICS:
        assert per_au(report, "model", metric)[5] == pytest.approx(expected[metric][5], rel=1e-10)
    assert "3 non-finite target values left out" in report.to_markdown()


def test_non_finite_predictions_are_left_out_for_every_predictor_and_counted():
    utterances = make_utterances(seed=5, count=6)
    poisoned = [dict(u) for u in utterances]
    pred = poisoned[1]["pred"] = poisoned[1]["pred"].copy()
    frames = np.flatnonzero(poisoned[1]["valid"])[:2]
    pred[frames, 3] = [float("nan"), float("-inf")]
    report = run(poisoned, mean_au=torch.full((K,), 2.0))
    assert report.masked_predictions == 2 and report.masked_targets == 0
    assert all(math.isfinite(value) for value in report.as_flat_dict().values())
    without = [dict(u) for u in utterances]  # the same cells left out of the clean data, for all predictors
    without[1]["target"] = without[1]["target"].copy()
    without[1]["target"][frames, 3] = float("nan")
    expected = run(without, mean_au=torch.full((K,), 2.0))
    for predictor in ("model", "zero", "mean"):
        for metric in METRICS:
            np.testing.assert_allclose(per_au(report, predictor, metric), per_au(expected, predictor, metric))
    assert "2 non-finite predictions left out" in report.to_markdown()


def test_zero_baseline_is_mean_absolute_target_and_uncorrelated():
    utterances = make_utterances(seed=2, count=8)
    report = run(utterances)
    y = np.concatenate([u["target"][u["valid"]] for u in utterances])
    np.testing.assert_allclose(per_au(report, "zero", "mae"), np.abs(y).mean(0), rtol=1e-12)
    np.testing.assert_allclose(per_au(report, "zero", "mse"), (y**2).mean(0), rtol=1e-12)
    for metric in ("pcc", "ccc"):
        assert np.all(per_au(report, "zero", metric) == 0.0)
        assert getattr(report.predictors["zero"].overall, metric).ci_low == 0.0


def test_mean_baseline_uses_given_mean_au():
    utterances = make_utterances(seed=3, count=8)
    mean_au = np.linspace(0.5, 2.5, K)
    report = run(utterances, mean_au=torch.tensor(mean_au))
    with np.errstate(invalid="ignore", divide="ignore"):  # numpy's PCC of a constant is nan
        expected = reference_scores(utterances, predictor=lambda u: mean_au)
    np.testing.assert_allclose(per_au(report, "mean", "mae"), expected["mae"], rtol=1e-12)
    np.testing.assert_allclose(per_au(report, "mean", "mse"), expected["mse"], rtol=1e-12)
    assert np.all(per_au(report, "mean", "pcc") == 0.0) and np.all(per_au(report, "mean", "ccc") == 0.0)
    without_mean = run(utterances)
    assert tuple(without_mean.predictors) == ("model", "zero")
    assert "val/mean/mae" not in without_mean.as_flat_dict() and "val/mean/mae" in report.as_flat_dict()


def jackknife_interval(replicates: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal 95% interval around ``full`` from leave-one-out replicates on axis 0."""
    count = len(replicates)
    se = np.sqrt((count - 1) / count * ((replicates - replicates.mean(0)) ** 2).sum(0))
    return full - Z * se, full + Z * se


def test_ci_matches_leave_one_utterance_out_loop():
    utterances = make_utterances(seed=4, count=10)
    report = run(utterances)
    point = reference_scores(utterances)
    left_out = [reference_scores(utterances[:i] + utterances[i + 1 :]) for i in range(len(utterances))]
    for metric in METRICS:
        replicates = np.stack([scores[metric] for scores in left_out])  # (U, K)
        low, high = jackknife_interval(replicates, point[metric])
        np.testing.assert_allclose(per_au(report, "model", metric, "ci_low"), low, rtol=1e-9)
        np.testing.assert_allclose(per_au(report, "model", metric, "ci_high"), high, rtol=1e-9)
        low, high = jackknife_interval(replicates.mean(1), point[metric].mean())
        overall = getattr(report.model.overall, metric)
        assert (overall.ci_low, overall.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_ci_contains_point_and_shrinks_with_more_utterances():
    few, many = run(make_utterances(seed=5, count=8)), run(make_utterances(seed=6, count=128))
    for report in (few, many):
        for metric in METRICS:
            for estimate in (getattr(report.model.overall, metric), report.model.per_au["AU12"].mae):
                assert estimate.ci_low < estimate.value < estimate.ci_high
    for metric in METRICS:
        width_few = getattr(few.model.overall, metric).ci_high - getattr(few.model.overall, metric).ci_low
        width_many = getattr(many.model.overall, metric).ci_high - getattr(many.model.overall, metric).ci_low
        assert width_many < 0.5 * width_few, metric


def test_updates_split_over_batches_equal_one_batch():
    utterances = make_utterances(seed=7, count=11)
    assert_reports_close(run(utterances, batch_size=3), run(utterances))
    assert_reports_close(run(utterances[::-1], batch_size=4), run(utterances))


def test_reset_forgets_earlier_utterances():
    first, second = make_utterances(seed=8, count=5), make_utterances(seed=9, count=6)
    metric = AUMetrics()
    metric.update(*to_batch(first))
    metric.compute()
    metric.reset()
    metric.update(*to_batch(second))
    assert_reports_close(metric.compute(), run(second))


def test_float16_inputs_are_accumulated_in_float64():
    utterances = make_utterances(seed=10, count=6)
    metric = AUMetrics()
    metric.update(*to_batch(utterances, dtype=torch.float16))
    assert all(chunk.dtype == torch.float64 for chunk in metric.utterance_stats)
    as_half = [
        {
            **u,
            "pred": u["pred"].astype(np.float16).astype(np.float64),
            "target": u["target"].astype(np.float16).astype(np.float64),
        }
        for u in utterances
    ]
    expected = reference_scores(as_half)
    report = metric.compute()
    for metric_name in METRICS:
        np.testing.assert_allclose(per_au(report, "model", metric_name), expected[metric_name], rtol=1e-10)


def test_utterances_without_valid_frames_are_ignored():
    utterances = make_utterances(seed=11, count=5)
    hollow = [{**u, "valid": np.zeros_like(u["valid"])} for u in make_utterances(seed=12, count=3)]
    report = run(utterances[:2] + hollow + utterances[2:], batch_size=4)
    assert report.num_utterances == len(utterances)
    assert_reports_close(report, run(utterances))


def test_single_utterance_has_nan_interval_and_no_data_is_nan():
    report = run(make_utterances(seed=13, count=1))
    assert report.num_utterances == 1
    for metric in METRICS:
        estimate = getattr(report.model.overall, metric)
        assert math.isfinite(estimate.value) and math.isnan(estimate.ci_low) and math.isnan(estimate.ci_high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute() before update()
        empty = AUMetrics().compute()
    assert (empty.num_utterances, empty.num_frames) == (0, 0)
    assert all(math.isnan(value) for key, value in empty.as_flat_dict().items() if "num_" not in key)


def test_constant_target_gives_zero_correlation_not_nan():
    utterances = make_utterances(seed=14, count=6)
    for u in utterances:
        u["target"][:, 2] = 1.7  # an AU held still
        u["target"][:, 16] = 0.0  # an AU that never fires
    report = run(utterances)
    for metric in ("pcc", "ccc"):
        for label in (AU_LABELS[2], AU_LABELS[16]):
            estimate = getattr(report.model.per_au[label], metric)
            assert (estimate.value, estimate.ci_low, estimate.ci_high) == (0.0, 0.0, 0.0)
    assert all(math.isfinite(value) for value in report.as_flat_dict().values())


def test_perfect_prediction_scores_perfectly():
    utterances = [{**u, "pred": u["target"]} for u in make_utterances(seed=15, count=4)]
    overall = run(utterances).model.overall
    assert overall.mae.value == 0.0 and overall.mse.value == 0.0
    assert overall.pcc.value == pytest.approx(1.0, abs=1e-12)
    assert overall.ccc.value == pytest.approx(1.0, abs=1e-12)


def test_report_views_agree():
    report = run(make_utterances(seed=16, count=5), mean_au=torch.full((K,), 1.0))
    flat = report.as_flat_dict("val")
    assert all(type(value) is float for value in flat.values())
    assert flat["val/mae"] == report.model.overall.mae.value
    assert flat["val/mae_ci_low"] == report.model.overall.mae.ci_low
    assert flat["val/zero/mse_ci_high"] == report.predictors["zero"].overall.mse.ci_high
    assert flat["val/AU12/pcc"] == report.model.per_au["AU12"].pcc.value
    assert flat["val/mean/AU45/ccc"] == report.predictors["mean"].per_au["AU45"].ccc.value
    assert not any("AU12" in key for key in report.as_flat_dict("test", per_au=False))
    rows = report.to_rows()
    assert len(rows) == (K + 1) * 3 and rows[0]["au"] == "all" and rows[0]["mae"] == flat["val/mae"]
    table = report.to_markdown().splitlines()
    assert table[0] == "| AU | predictor | MAE | MSE | PCC | CCC |"
    assert sum(line.startswith("| AU12 |") for line in table) == 3


def test_labels_default_and_custom():
    assert AUMetrics().labels == AU_LABELS
    assert AUMetrics(num_aus=3).labels == ("AU0", "AU1", "AU2")
    report = run(make_utterances(seed=17, count=3, num_aus=2), num_aus=2, labels=["smile", "blink"])
    assert "val/smile/mae" in report.as_flat_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_aus": 2, "labels": ["a"]}, "labels"),
        ({"num_aus": 2, "labels": ["a", "a"]}, "labels"),
        ({"num_aus": 2, "labels": ["a", "zero"]}, "clash"),
        ({"mean_au": torch.zeros(3)}, "mean_au"),
        ({"mean_au": torch.full((K,), float("nan"))}, "mean_au"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AUMetrics(**kwargs)


def test_bad_update_inputs_are_named():
    metric = AUMetrics()
    pred, target, mask = to_batch(make_utterances(seed=18, count=2))
    with pytest.raises(ValueError, match="pred has shape"):
        metric.update(pred[..., :5], target, mask)
    with pytest.raises(ValueError, match="target has shape"):
        metric.update(pred, target[:, :-1], mask)
    with pytest.raises(ValueError, match="mask must be bool"):
        metric.update(pred, target, mask.float())
    with pytest.raises(TypeError, match="floating point"):
        metric.update(pred.long(), target, mask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    utterances = make_utterances(seed=19, count=7)
    metric = AUMetrics(mean_au=torch.ones(K)).cuda()
    metric.update(*(tensor.cuda() for tensor in to_batch(utterances)))
    assert_reports_close(metric.compute(), run(utterances, mean_au=torch.ones(K)), rtol=1e-10)
