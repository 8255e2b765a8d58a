"""Hostile checkpoints for every command that loads one: damaged files, archives that are no checkpoint,
NaN weights and statistics, another module's or another architecture's checkpoint.
"""

from __future__ import annotations

import pytest

from cause_pl.cli.command import EXIT_DATA
from tests.hostile.argv import animate, estimate, gan_eval, table1
from tests.hostile.harness import Case, check_case, params


def estimate_with(name):
    return lambda k, w: [*estimate(k, w), "--ckpt", getattr(k, name)]


CASES = [
    Case("estimate-truncated-ckpt", estimate_with("truncated_ckpt"), EXIT_DATA,
         ["truncated.ckpt", "not a PyTorch checkpoint", "central directory"]),
    Case("estimate-zip-not-a-ckpt", estimate_with("zip_ckpt"), EXIT_DATA, ["archive.ckpt", "not a PyTorch checkpoint"]),
    Case("estimate-zero-byte-ckpt", estimate_with("empty_ckpt"), EXIT_DATA, ["empty.ckpt", "not a PyTorch checkpoint"]),
    Case("estimate-nan-weights", estimate_with("nan_weights_ckpt"), EXIT_DATA,
         ["nan_weights.ckpt", "'net.", "holds NaN or infinite values"]),
    Case("estimate-nan-statistics", estimate_with("nan_stats_ckpt"), EXIT_DATA,
         ["nan_stats.ckpt", "'mel_std' holds NaN or infinite values"]),
    Case("estimate-no-state-dict", estimate_with("no_state_ckpt"), EXIT_DATA,
         ["no_state.ckpt", "not a Lightning checkpoint (no state_dict)"]),
    Case("estimate-unknown-module", estimate_with("unknown_ckpt"), EXIT_DATA,
         ["unknown.ckpt", "holds an unknown module's weights, expected a CAUSERegressor checkpoint"]),
    Case("estimate-other-architecture", estimate_with("other_arch_ckpt"), EXIT_DATA,
         ["other_arch.ckpt", "weights do not fit the net built with arch='mlp'"]),
    Case("table1-ganimation-ckpt", lambda k, w: table1(k, w, ckpt=k.gan), EXIT_DATA,
         lambda k, w: [k.gan, "holds a GANimation's weights, expected a CAUSERegressor checkpoint"]),
    Case("table1-second-ckpt-nan", lambda k, w: [*table1(k, w), "--ckpt", k.cause, k.nan_weights_ckpt], EXIT_DATA,
         ["nan_weights.ckpt", "holds NaN or infinite values"]),
    Case("table1-other-architecture", lambda k, w: table1(k, w, ckpt=k.other_arch_ckpt), EXIT_DATA,
         ["other_arch.ckpt", "weights do not fit the net built with arch='mlp'"]),
    Case("animate-ganimation-ckpt-nan", lambda k, w: animate(k, w, gan=k.gan_nan_ckpt), EXIT_DATA,
         ["gan_nan.ckpt", "'generator.", "holds NaN or infinite values"]),
    Case("animate-cause-where-ganimation-expected", lambda k, w: animate(k, w, gan=k.cause), EXIT_DATA,
         lambda k, w: [k.cause, "expected a GANimation checkpoint"]),
    Case("animate-truncated-cause-ckpt", lambda k, w: animate(k, w, cause=k.truncated_ckpt), EXIT_DATA,
         ["truncated.ckpt", "not a PyTorch checkpoint"]),
    Case("ganimation-eval-without-training-state", lambda k, w: gan_eval(k, w, ckpt=k.gan_no_state_ckpt), EXIT_DATA,
         ["gan_no_state.ckpt", "ganimation_training_state"]),
    Case("ganimation-eval-zip-ckpt", lambda k, w: gan_eval(k, w, ckpt=k.zip_ckpt), EXIT_DATA,
         ["archive.ckpt", "not a PyTorch checkpoint"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_checkpoint_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
