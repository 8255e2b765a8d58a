"""The first hostile inputs of every command (moved from ``tests/cli/test_errors.py``), usage errors, sweeps.

Usage: bad flag values (zero or negative sizes, an unknown device, a CUDA device on a CPU machine),
unknown or dashed flags, a value outside a flag's choices, an unknown command.
"""

from __future__ import annotations

import pytest
import torch

from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from tests.hostile.argv import animate, estimate, gan_eval, table1
from tests.hostile.harness import Case, check_case, params

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine --device cuda is fine")


MOVED = [
    Case("estimate-missing-ckpt", lambda k, w: [*estimate(k, w), "--ckpt", w / "missing.ckpt"], EXIT_OS,
         ["file not found", "missing"]),
    Case("estimate-dir-as-ckpt", lambda k, w: [*estimate(k, w), "--ckpt", w], EXIT_OS,
         lambda k, w: ["is a directory", w]),
    Case("estimate-text-ckpt", lambda k, w: [*estimate(k, w), "--ckpt", k.text_ckpt], EXIT_DATA,
         ["not a PyTorch checkpoint"]),
    Case("estimate-prose-ckpt", lambda k, w: [*estimate(k, w), "--ckpt", k.prose_ckpt], EXIT_DATA,
         ["not loadable", "prose.ckpt"]),
    Case("estimate-ganimation-ckpt", lambda k, w: [*estimate(k, w), "--ckpt", k.gan], EXIT_DATA,
         lambda k, w: ["expected a CAUSERegressor checkpoint", k.gan]),
    Case("estimate-undecodable-audio", lambda k, w: ["estimate", k.garbage_wav, *estimate(k, w)[2:]], EXIT_DATA,
         ["not decodable as audio", "garbage.wav"]),
    Case("estimate-empty-audio", lambda k, w: ["estimate", k.empty_wav, *estimate(k, w)[2:]], EXIT_DATA,
         ["empty file", "empty.wav"]),
    Case("estimate-missing-audio", lambda k, w: ["estimate", w / "missing.wav", *estimate(k, w)[2:]], EXIT_OS,
         ["file not found", "missing.wav"]),
    Case("estimate-out-under-a-file", lambda k, w: [*estimate(k, w), "--out", k.plain_file / "sub" / "aus.csv"],
         EXIT_OS, ["Not a directory", "plain_file"]),
    Case("estimate-device-banana", lambda k, w: estimate(k, w, "--device", "banana"), EXIT_USAGE, ["banana"]),
    Case("animate-face-not-image", lambda k, w: animate(k, w, face=k.text_face), EXIT_DATA,
         ["not a readable image", "face.txt"]),
    Case("animate-swapped-ckpts", lambda k, w: animate(k, w, cause=k.gan, gan=k.cause), EXIT_DATA,
         lambda k, w: ["expected a CAUSERegressor checkpoint", k.gan]),
    Case("animate-missing-audio", lambda k, w: animate(k, w, audio=w / "missing.wav"), EXIT_OS,
         ["--audio: file not found", "missing.wav"]),
    Case("animate-out-under-a-file", lambda k, w: [*animate(k, w), "--out", k.plain_file / "out.mp4"], EXIT_OS,
         ["a file is in the way of a folder", "plain_file"]),
    Case("table1-no-index", lambda k, w: table1(k, w, shards=k.no_index), EXIT_DATA, ["no index.json", "no_index"]),
    Case("table1-face-shards", lambda k, w: table1(k, w, shards=k.faces), EXIT_DATA, ["'faces' shards"]),
    Case("table1-one-ckpt-missing", lambda k, w: [*table1(k, w), "--ckpt", k.cause, w / "gone.ckpt"], EXIT_OS,
         ["--ckpt: file not found", "gone.ckpt"]),
    Case("ganimation-eval-cause-ckpt", lambda k, w: gan_eval(k, w, ckpt=k.cause), EXIT_DATA,
         lambda k, w: ["expected a GANimation checkpoint", k.cause]),
    Case("ganimation-eval-no-index", lambda k, w: gan_eval(k, w, shards=k.no_index), EXIT_DATA,
         ["no index.json", "no_index"]),
    Case("sweep-bad-method", lambda k, w: ["sweep", k.bad_sweep, "--dry_run"], EXIT_DATA,
         ["method 'bogus'", "bad_sweep"]),
    Case("sweep-missing-file", lambda k, w: ["sweep", w / "nope.yaml", "--dry_run"], EXIT_OS,
         ["file not found", "nope.yaml"]),
    Case("sweep-random-without-count", lambda k, w: ["sweep", k.random_sweep, "--dry_run"], EXIT_USAGE, ["--count"]),
    Case("demo-out-under-a-file", lambda k, w: ["demo", "--out", k.plain_file / "demo"], EXIT_OS, ["plain_file"]),
]  # fmt: skip

USAGE = [
    Case("estimate-chunk-frames-zero", lambda k, w: estimate(k, w, "--chunk_frames", "0"), EXIT_USAGE,
         ["--chunk_frames", "0"]),
    Case("estimate-chunk-frames-negative", lambda k, w: estimate(k, w, "--chunk_frames=-5"), EXIT_USAGE,
         ["--chunk_frames", "-5"]),
    Case("estimate-device-cuda-on-cpu", lambda k, w: estimate(k, w, "--device", "cuda"), EXIT_USAGE,
         ["--device cuda", "no CUDA device"], marks=[NO_CUDA]),
    Case("estimate-unknown-flag", lambda k, w: estimate(k, w, "--fps", "30"), EXIT_USAGE, ["--fps"], style="usage"),
    Case("estimate-no-ckpt", lambda k, w: ["estimate", k.speech, "--out", w / "aus.csv"], EXIT_USAGE, ["ckpt"],
         style="usage"),
    Case("animate-dashed-flag", lambda k, w: [*animate(k, w), "--batch-frames", "4"], EXIT_USAGE,
         ["--batch-frames", "did you mean --batch_frames"], style="usage"),
    Case("animate-batch-frames-zero", lambda k, w: animate(k, w, "--batch_frames", "0"), EXIT_USAGE,
         ["--batch_frames", "0"]),
    Case("animate-even-smoothing", lambda k, w: animate(k, w, "--smoothing", "4"), EXIT_USAGE,
         ["--smoothing", "4", "odd"]),
    Case("animate-device-banana", lambda k, w: animate(k, w, "--device", "banana"), EXIT_USAGE, ["banana"]),
    Case("table1-device-banana", lambda k, w: table1(k, w, "--device", "banana"), EXIT_USAGE, ["--device", "banana"]),
    Case("table1-batch-size-zero", lambda k, w: table1(k, w, "--batch_size", "0"), EXIT_USAGE,
         ["--batch_size", "0"]),
    Case("table1-split-train", lambda k, w: table1(k, w, "--split", "train"), EXIT_USAGE, ["split", "Got value: train"],
         style="usage"),
    Case("ganimation-eval-reader-steps-zero", lambda k, w: gan_eval(k, w, "--reader_steps", "0"), EXIT_USAGE,
         ["--reader_steps", "0"]),
    Case("sweep-count-zero", lambda k, w: ["sweep", k.random_sweep, "--count", "0", "--dry_run"], EXIT_USAGE,
         ["--count must be at least 1"]),
    Case("sweep-file-not-yaml", lambda k, w: ["sweep", k.not_yaml_sweep, "--dry_run"], EXIT_DATA,
         ["not_yaml_sweep.yaml", "cannot read the sweep file"]),
    Case("sweep-directory-as-file", lambda k, w: ["sweep", k.no_index, "--dry_run"], EXIT_OS,
         ["sweep_file: is a directory", "no_index"]),
    Case("sweep-grid-dry-run-writes-nothing", lambda k, w: ["sweep", k.grid_sweep, "--dry_run"], 0,
         check=lambda k, w, out: out.count("cause-pl fit") == 2 or pytest.fail(out)),
    Case("sweep-binary-file", lambda k, w: ["sweep", k.binary_sweep, "--dry_run"], EXIT_DATA,
         ["binary_sweep.yaml", "cannot read the sweep file", "codec can't decode"]),
    Case("sweep-min-above-max", lambda k, w: ["sweep", k.inverted_sweep, "--count", "2", "--dry_run"], EXIT_DATA,
         ["inverted_sweep.yaml", "min 0.01 is above max 0.0001"]),
    Case("sweep-name-escapes-the-runs-folder", lambda k, w: ["sweep", k.escaping_sweep], EXIT_DATA,
         ["escaping_sweep.yaml", "name '../../escaped' cannot name a folder"]),
    Case("demo-out-is-a-file", lambda k, w: ["demo", "--out", k.plain_file], EXIT_OS,
         ["a file is in the way of a folder", "plain_file"]),
    Case("estimate-config-missing", lambda k, w: estimate(k, w, "--config", w / "gone.yaml"), EXIT_USAGE,
         ["gone.yaml"], style="usage"),
    Case("demo-workers-zero", lambda k, w: ["demo", "--workers", "0", "--out", w / "demo"], EXIT_USAGE,
         ["--workers must be >= 1"]),
]  # fmt: skip


@pytest.mark.parametrize("case", params(MOVED + USAGE))
def test_command_case(case, kit, work, capsys, monkeypatch):
    check_case(case, kit, work, capsys, monkeypatch)


def test_unknown_command_is_usage(capsys):
    from tests.hostile.harness import run_main

    code, _, err = run_main(capsys, ["frobnicate", "--out", "x"])
    assert code == EXIT_USAGE and err.startswith("cause-pl: unknown command 'frobnicate'") and "Traceback" not in err
