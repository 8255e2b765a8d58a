"""``load_sweep`` refuses what it cannot run with a SweepConfigError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from cause_pl.sweeps.config import SweepConfigError, load_sweep

HEAD = "method: random\nmetric: {name: val/mae, goal: minimize}\ncommand: [cause-pl, fit, '${args}']\n"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\xff\xfe\x00 not text", "cannot read the sweep file: 'utf-8' codec"),
        (HEAD + "parameters:\n  lr: {distribution: uniform, min: 1, max: 0.01}\n", "min 1 is above max 0.01"),
        (HEAD + "parameters:\n  lr: {distribution: uniform, min: a, max: b}\n", "min and max must be numbers"),
        (HEAD + "parameters:\n  lr: {distribution: log_uniform_values, min: 0, max: 1}\n", "min must be > 0, got 0"),
        ("name: ../escape\n" + HEAD + "parameters:\n  lr: {values: [1]}\n", "name '../escape' cannot name a folder"),
    ],
)
def test_unusable_sweep_files_name_the_file_and_the_problem(tmp_path, content, match):
    path = tmp_path / "sweep.yaml"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(SweepConfigError, match=match) as error:
        load_sweep(path)
    assert str(error.value).startswith(str(path))


def test_the_shipped_sweep_file_loads():
    sweep = load_sweep(Path(__file__).resolve().parents[2] / "experiments/sweeps/cause_arch_lr.yaml")
    assert sweep.parameters
