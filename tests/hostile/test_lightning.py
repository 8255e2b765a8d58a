"""Hostile configurations of the LightningCLI commands (``fit``, ``validate``, ``test``): unknown options,
values of the wrong type, a config file that is missing, malformed or a folder, a ``--data`` root that
does not exist or holds the wrong shards, a checkpoint path that is missing or damaged.

Parser errors are the parser's message (a few indented lines, exit 2); what goes wrong once the trainer
starts is one line, after what Lightning logs as it starts. ``--trainer.logger=false`` keeps runs offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from tests.hostile.harness import Case, check_case, params

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
BASE = ["--config", EXPERIMENTS / "cause/voxceleb2.yaml"]
SYNTHETIC = [*BASE, "--config", EXPERIMENTS / "cause/synthetic.yaml", "--trainer.logger=false"]


def on(command, root_name, *more):
    return lambda k, w: [command, *SYNTHETIC, "--data.init_args.root", getattr(k, root_name), *more]


CASES = [
    Case("fit-unknown-option", lambda k, w: ["fit", *BASE, "--trainer.bogus=1"], EXIT_USAGE,
         ["unrecognized arguments: --trainer.bogus=1"], style="lightning"),
    Case("fit-unknown-model-option", lambda k, w: ["fit", *BASE, "--model.init_args.lrr=0.1"], EXIT_USAGE,
         ["Option 'lrr' is not accepted"], style="lightning"),
    Case("fit-lr-banana", lambda k, w: ["fit", *BASE, "--model.init_args.lr=banana"], EXIT_USAGE,
         ["Got value: banana"], style="lightning"),
    Case("fit-missing-config", lambda k, w: ["fit", *BASE, "--config", w / "missing.yaml"], EXIT_USAGE,
         ["missing.yaml"], style="lightning"),
    Case("fit-malformed-yaml", lambda k, w: ["fit", "--config", k.bad_yaml], EXIT_USAGE,
         ["Problems parsing config"], style="lightning"),
    Case("fit-config-a-folder", lambda k, w: ["fit", "--config", k.no_index], EXIT_USAGE,
         ["Path is not a file", "no_index"], style="lightning"),
    Case("fit-max-epochs-negative", on("fit", "vox", "--trainer.max_epochs=-5"), EXIT_USAGE,
         ["max_epochs", "-5"], style="last"),
    Case("fit-batch-size-zero", on("fit", "vox", "--data.init_args.batch_size=0"), EXIT_DATA,
         ["SpeechAUDataModule batch_size must be an integer >= 1, got 0"], style="last"),
    Case("validate-data-root-missing", lambda k, w: ["validate", *SYNTHETIC, "--data.init_args.root", w / "nope"],
         EXIT_OS, lambda k, w: ["no such shard folder", w / "nope"], style="last"),
    Case("validate-face-shards-for-cause", on("validate", "faces"), EXIT_DATA,
         ["holds 'faces' shards; SpeechAUDataModule needs 'speech_au' shards"], style="last"),
    Case("validate-index-without-splits", on("validate", "vox_no_splits"), EXIT_DATA,
         ["vox_no_splits/index.json", "'splits' is none"], style="last"),
    Case("test-ckpt-path-missing", lambda k, w: [*on("test", "vox")(k, w), "--ckpt_path", w / "gone.ckpt"], EXIT_OS,
         ["--ckpt_path: file not found", "gone.ckpt"], style="last"),
    Case("test-ckpt-path-truncated", lambda k, w: [*on("test", "vox")(k, w), "--ckpt_path", k.truncated_ckpt],
         EXIT_DATA, ["truncated.ckpt", "not a PyTorch checkpoint"], style="last"),
]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_lightning_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)
