"""The ``cause-pl`` command line as a user runs it: fit, test, estimate, table1 (subprocesses), and the
LightningCLI commands' checkpoints and errors after parsing (in this process, on the quick demo's outputs)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cause_pl.cli.command import EXIT_DATA, EXIT_OS, EXIT_USAGE
from cause_pl.cli.main import main
from cause_pl.openface.writer import CSV_COLUMNS
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from cause_pl.synthetic.speech import synth_utterance
from tests.builders.media import write_wav
from tests.models.test_checkpoints import write_unsafe_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_CONFIG = (
    "--config",
    ROOT / "experiments" / "cause" / "voxceleb2.yaml",
    "--config",
    ROOT / "experiments" / "cause" / "synthetic.yaml",
)
"""The synthetic CAUSE run: the VoxCeleb2 base config with the synthetic overlay."""


def cause_pl(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``cause-pl ARGS`` (the installed console script's module) and fail with its output."""
    command = [sys.executable, "-m", "cause_pl.cli.main", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def fit_overrides(shards: Path, out: Path, steps: int, samples_per_epoch: int = 160) -> list[str]:
    """Overrides that point the synthetic config at test shards and keep the run short and local."""
    return [
        f"--data.init_args.root={shards}",
        "--data.init_args.num_workers=0",
        f"--data.init_args.train_samples_per_epoch={samples_per_epoch}",
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.log_per_au=false",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CNN fitted for 80 steps through the CLI on small synthetic shards (enough to beat the Zero baseline),
    in two epochs, since every epoch ends in a validation of a few seconds."""
    tmp = tmp_path_factory.mktemp("cli")
    shards = tmp / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=4, max_seconds=4))
    cause_pl("fit", *SYNTHETIC_CONFIG, *fit_overrides(shards, tmp / "run", 80, samples_per_epoch=640))
    checkpoints = sorted((tmp / "run").rglob("last.ckpt"))
    assert checkpoints, "fit wrote no last.ckpt"
    return shards, checkpoints[0], tmp


def test_usage_lists_commands():
    result = subprocess.run([sys.executable, "-m", "cause_pl.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "estimate" in result.stdout and "table1" in result.stdout
    result = subprocess.run([sys.executable, "-m", "cause_pl.cli.main", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown command" in result.stderr


def test_fit_logs_metrics_with_baselines(trained):
    tmp = trained[2]
    metrics = next((tmp / "run").rglob("metrics.csv"))
    rows = [row for row in csv.DictReader(metrics.read_text().splitlines()) if row.get("val/mae")]
    assert rows and float(rows[-1]["val/zero/mae"]) > 0 and float(rows[-1]["val/mean/mae"]) > 0
    assert list((tmp / "run").rglob("au_report/*_val.md"))


def test_estimate_writes_openface_style_csv(trained, tmp_path, capfd):
    _, checkpoint, _ = trained
    utterance = synth_utterance(0, 0, seed=3, min_seconds=3, max_seconds=3)
    audio = write_wav(tmp_path / "speech.wav", np.repeat(utterance.wave[:, None], 2, axis=1), 16000)
    out = tmp_path / "aus.csv"
    cause_pl("estimate", audio, "--ckpt", checkpoint, "--out", out)
    rows = list(csv.reader(out.open()))
    header = [cell.strip() for cell in rows[0]]
    assert header == [*CSV_COLUMNS]
    assert len(rows) - 1 == len(utterance.aus)
    values = np.array([[float(cell) for cell in row] for row in rows[1:]])
    assert values[0, 0] == 1 and values[-1, 2] == pytest.approx((len(utterance.aus) - 1) / 25)
    assert (values[:, 5:] >= 0).all() and (values[:, 5:] <= 5).all()
    code, stdout, _ = run_main(capfd, ["estimate", audio, "--ckpt", checkpoint, "--out", "-"])
    assert code == 0 and stdout == out.read_text()


def test_table1_markdown_and_csv(trained, tmp_path):
    shards, checkpoint, _ = trained
    out = tmp_path / "table1"
    cause_pl("table1", "--shards", shards, "--ckpt", checkpoint, "--out", out)
    markdown = out.with_suffix(".md").read_text()
    assert "| Zero |" in markdown and "| Mean |" in markdown and "| CNN |" in markdown
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(out.with_suffix(".csv").read_text()))}
    for row in rows.values():
        assert float(row["mae_ci_low"]) <= float(row["mae"]) <= float(row["mae_ci_high"])
    assert float(rows["CNN"]["mae"]) < float(rows["Zero"]["mae"])


def run_main(capfd, argv: list) -> tuple[int, str, str]:
    """``cause-pl ARGV`` in this process: exit code, stdout, stderr (Lightning logs to the descriptors)."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    out, err = capfd.readouterr()
    return code, out, err


def assert_ends_in_one_line(err: str, prog: str, fragments: list) -> None:
    """What Lightning logged as it started, then ``PROG: message`` as the last line, and no traceback."""
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: ") and "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert str(fragment) in last, (fragment, last)


def demo_shards(quick_demo, tmp_path: Path, change) -> Path:
    """A copy of the demo's speech shards whose index.json ``change`` edits in place."""
    shards = Path(shutil.copytree(quick_demo.files["data"] / "speech_au", tmp_path / "speech_au"))
    index = json.loads((shards / "index.json").read_text())
    change(index)
    (shards / "index.json").write_text(json.dumps(index))
    return shards


def lightning_test_argv(quick_demo, out: Path, ckpt: Path, overlay: str | None = None) -> list:
    """``cause-pl test`` of ``ckpt`` with the synthetic config (and ``overlay``) on the demo's speech shards."""
    configs = [] if overlay is None else ["--config", ROOT / "experiments" / "cause" / overlay]
    overrides = fit_overrides(quick_demo.files["data"] / "speech_au", out, 1)  # after the configs: they win
    return ["test", *SYNTHETIC_CONFIG, *configs, *overrides, "--ckpt_path", ckpt]


@pytest.mark.parametrize("overlay", [None, "cnn.yaml", "mlp.yaml"])
def test_a_demo_checkpoint_tests_through_the_cli(overlay, quick_demo, tmp_path, capfd):
    """Saved outside LightningCLI (no ``_class_path``); the checkpoint's hyperparameters win, as in Lightning."""
    argv = lightning_test_argv(quick_demo, tmp_path, quick_demo.files["cause_checkpoint"], overlay)
    code, _, err = run_main(capfd, argv)
    assert code == 0, err[-3000:]
    rows = [row for row in csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()) if row.get("test/mae")]
    assert rows and float(rows[-1]["test/mae"]) < float(rows[-1]["test/zero/mae"])
    assert ("its hyperparameters replace the config's: arch 'mlp' -> 'cnn'" in err) == (overlay == "mlp.yaml")


def _list_a_missing_shard(index: dict) -> None:
    index["splits"]["train"]["shards"].append({"name": "speech_au-train-000099.tar", "samples": 4})
    index["splits"]["train"]["samples"] += 4


def _drop_frontend(index: dict) -> None:
    del index["frontend"]


def test_errors_once_the_trainer_runs_are_one_line(quick_demo, tmp_path, capfd):
    files, work = quick_demo.files, tmp_path / "work"
    relabelled = torch.load(files["cause_checkpoint"], weights_only=True)
    relabelled["hyper_parameters"]["arch"] = "mlp"  # cnn weights
    torch.save(relabelled, tmp_path / "other_arch.ckpt")
    poisoned = torch.load(files["cause_checkpoint"], weights_only=True)
    poisoned["state_dict"]["mel_std"][3] = float("nan")
    torch.save(poisoned, tmp_path / "nan_stats.ckpt")
    unsafe = write_unsafe_checkpoint(tmp_path / "unsafe.ckpt")
    missing_shard = demo_shards(quick_demo, tmp_path / "missing", _list_a_missing_shard)
    no_frontend = demo_shards(quick_demo, tmp_path / "no_frontend", _drop_frontend)
    fit = ["fit", *SYNTHETIC_CONFIG]
    cases = [
        ([*fit, *fit_overrides(missing_shard, work, 2), "--data.init_args.strict=true"], EXIT_DATA,
         ["speech_au-train-000099.tar", "No such file"]),
        ([*fit, *fit_overrides(no_frontend, work, 2)], EXIT_DATA, ["index.json: no frontend parameters"]),
        (lightning_test_argv(quick_demo, work, tmp_path / "gone.ckpt"), EXIT_OS,
         ["--ckpt_path: file not found", "gone.ckpt"]),
        (lightning_test_argv(quick_demo, work, files["ganimation_checkpoint"]), EXIT_DATA,
         [files["ganimation_checkpoint"], "holds a GANimation's weights, expected a CAUSERegressor checkpoint"]),
        (lightning_test_argv(quick_demo, work, tmp_path / "other_arch.ckpt"), EXIT_DATA,
         ["the checkpoint's weights do not fit the net built with arch='mlp'"]),
        (lightning_test_argv(quick_demo, work, tmp_path / "nan_stats.ckpt"), EXIT_DATA,
         ["nan_stats.ckpt", "'mel_std' holds NaN or infinite values"]),
        (lightning_test_argv(quick_demo, work, unsafe), EXIT_DATA,
         [unsafe, f"(it holds {write_unsafe_checkpoint.__module__}.Unsafe); only plain tensors"]),
        (["estimate", files["speech"], "--ckpt", unsafe, "--out", work / "aus.csv"], EXIT_DATA,
         [unsafe, "not loadable with weights_only=True (it holds"]),
    ]  # fmt: skip
    if not torch.cuda.is_available():
        cases.append(
            ([*fit, *fit_overrides(no_frontend, work, 2), "--trainer.accelerator", "gpu"], EXIT_USAGE,
             ["--trainer.accelerator gpu: no CUDA GPU is available", "use --trainer.accelerator cpu"])
        )  # fmt: skip
    for argv, expected, fragments in cases:
        code, _, err = run_main(capfd, argv)
        assert code == expected, (argv, err[-3000:])
        assert_ends_in_one_line(err, f"cause-pl {argv[0]}", fragments)
        assert len(err.strip().splitlines()[-1]) < 400


def test_under_debug_and_for_a_bug_the_exception_propagates(quick_demo, tmp_path, monkeypatch):
    from cause_pl.models.cause import CAUSERegressor
    from cause_pl.shards.schema import ShardError

    shards = quick_demo.files["data"] / "speech_au"
    no_frontend = demo_shards(quick_demo, tmp_path, _drop_frontend)
    with pytest.raises(ShardError, match="no frontend parameters"):
        main([str(arg) for arg in ["fit", *SYNTHETIC_CONFIG, *fit_overrides(no_frontend, tmp_path, 2), "--debug"]])

    def broken(*args, **kwargs):
        raise RuntimeError("a bug inside the model")

    monkeypatch.setattr(CAUSERegressor, "training_step", broken)
    with pytest.raises(RuntimeError, match="a bug inside the model"):
        main([str(arg) for arg in ["fit", *SYNTHETIC_CONFIG, *fit_overrides(shards, tmp_path / "run", 2)]])
