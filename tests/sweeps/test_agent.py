"""``cause-pl sweep``: W&B sweep files drawn and run locally, offline, with a summary of the sweep metric.

Fast tests check the sweep file handling and run a stand-in training program; the end-to-end test
(slow) runs real LightningCLI fits of MLP and CNN at two learning rates with W&B offline and the W&B
server address pointed at a closed port, so any network attempt would fail.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from cause_pl.cli.sweep import sweep
from cause_pl.sweeps.agent import run_command
from cause_pl.sweeps.config import SweepConfigError, draw_runs, load_sweep
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from tests.cli.test_main import ROOT

SHIPPED = ROOT / "experiments" / "sweeps" / "cause_arch_lr.yaml"
CLOSED_PORT = "http://127.0.0.1:9"


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def read_summary(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_shipped_sweep_is_the_arch_by_lr_grid():
    config = load_sweep(SHIPPED)
    assert (config.method, config.metric, config.goal) == ("grid", "val/mae", "minimize")
    raw = yaml.safe_load(SHIPPED.read_text())["parameters"]
    runs = draw_runs(config, count=None)
    expected = {
        (arch, lr)
        for arch, lr in itertools.product(raw["model.init_args.arch"]["values"], raw["model.init_args.lr"]["values"])
    }
    assert len(runs) == len(expected) == 12
    assert {(run["model.init_args.arch"], run["model.init_args.lr"]) for run in runs} == expected
    command = run_command(config, runs[0])
    configs = [Path(command[index + 1]) for index, item in enumerate(command) if item == "--config"]
    assert configs and all((ROOT / path).is_file() for path in configs)
    assert f"--model.init_args.arch={runs[0]['model.init_args.arch']}" in command
    assert draw_runs(config, count=5) == runs[:5]


def test_random_draws_follow_their_distributions(tmp_path):
    path = write_yaml(
        tmp_path / "random.yaml",
        {
            "method": "random",
            "metric": {"name": "val/mae"},
            "program": "train.py",
            "parameters": {
                "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
                "layers": {"min": 1, "max": 4},
                "dropout": {"min": 0.0, "max": 0.5},
                "arch": {"values": ["mlp", "cnn"], "probabilities": [0.0, 1.0]},
                "batch": {"value": 16},
            },
        },
    )
    config = load_sweep(path)
    runs = draw_runs(config, count=400, seed=1)
    lrs = [run["lr"] for run in runs]
    assert all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert 0.4 < sum(lr < 1e-3 for lr in lrs) / len(lrs) < 0.6, "log-uniform: half below the geometric midpoint"
    assert {run["layers"] for run in runs} == {1, 2, 3, 4}
    assert all(isinstance(run["layers"], int) and 0.0 <= run["dropout"] <= 0.5 for run in runs)
    assert {run["arch"] for run in runs} == {"cnn"} and {run["batch"] for run in runs} == {16}
    assert draw_runs(config, count=3, seed=1) == runs[:3]
    assert draw_runs(config, count=3, seed=2) != runs[:3]
    with pytest.raises(SweepConfigError, match="--count"):
        draw_runs(config, count=None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "bayes"}, "bayes"),
        ({"early_stopping": True}, "not keys of W&B's sweep schema"),
        ({"metric": {"goal": "minimize"}}, "metric"),
        ({"parameters": {"lr": {"min": 0.001, "max": 0.1}}}, "grid sweep needs values"),
        ({"parameters": {"lr": {"distribution": "beta"}}}, "not supported"),
        ({"command": ["${env}", "cause-pl", "${args_hydra}"]}, "args_hydra"),
    ],
)
def test_unusable_sweep_files_are_rejected_naming_the_file(tmp_path, change, message):
    content = {**yaml.safe_load(SHIPPED.read_text()), **change}
    path = write_yaml(tmp_path / "bad.yaml", content)
    with pytest.raises(SweepConfigError, match=message) as error:
        load_sweep(path)
    assert str(path) in str(error.value)


def test_command_macros_expand_like_the_wandb_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("CAUSE_PL_TEST_DATA", "/data/x")
    path = write_yaml(
        tmp_path / "macros.yaml",
        {
            "method": "grid",
            "metric": {"name": "loss"},
            "program": "train.py",
            "parameters": {"lr": {"values": [0.01]}, "arch": {"value": "cnn"}},
            "command": [
                "${env}",
                "${interpreter}",
                "${program}",
                "--root=${envvar:CAUSE_PL_TEST_DATA}",
                "${args}",
                "${args_no_hyphens}",
                "${args_json}",
            ],
        },
    )
    config = load_sweep(path)
    values = draw_runs(config, count=None)[0]
    assert run_command(config, values) == [
        sys.executable,
        "train.py",
        "--root=/data/x",
        "--lr=0.01",
        "--arch=cnn",
        "lr=0.01",
        "arch=cnn",
        json.dumps({"lr": 0.01, "arch": "cnn"}),
    ]


# A stand-in for `cause-pl fit`: logs metric = (lr - 0.01)^2 through the CSV logger the agent adds, fails for arch=bad.
STAND_IN = """
import csv, json, os, pathlib, sys
args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--") and "=" in arg)
if args["arch"] == "bad":
    sys.exit(3)
log = pathlib.Path(args["trainer.logger.init_args.save_dir"]) / args["trainer.logger.init_args.name"] / "version_0"
log.mkdir(parents=True)
with open(log / "metrics.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerows([["step", "val/loss"], [1, 99.0], [2, (float(args["lr"]) - 0.01) ** 2]])
env = {key: os.environ.get(key) for key in ("WANDB_MODE", "WANDB_RUN_ID", "WANDB_RUN_GROUP")}
(log.parent.parent / "env.json").write_text(json.dumps(env))
"""


def test_agent_runs_each_draw_and_picks_the_best(tmp_path, monkeypatch, capsys):
    (tmp_path / "train.py").write_text(STAND_IN)
    path = write_yaml(
        tmp_path / "stand_in.yaml",
        {
            "name": "stand-in",
            "method": "grid",
            "metric": {"name": "val/loss", "goal": "minimize"},
            "program": "train.py",
            "parameters": {"arch": {"values": ["a", "bad"]}, "lr": {"values": [0.001, 0.02]}},
            "command": ["${env}", "${interpreter}", "${program}", "${args}"],
        },
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "online")  # the agent forces offline anyway
    out = tmp_path / "out"
    assert sweep(path, out=out) == 1, "a failed run makes the sweep exit non-zero"
    rows = read_summary(out)
    assert [(row["arch"], float(row["lr"])) for row in rows] == [
        ("a", 0.001),
        ("a", 0.02),
        ("bad", 0.001),
        ("bad", 0.02),
    ]
    assert [row["status"] for row in rows] == ["finished", "finished", "failed (exit 3)", "failed (exit 3)"]
    assert float(rows[0]["val/loss"]) == pytest.approx((0.001 - 0.01) ** 2)
    assert math.isnan(float(rows[2]["val/loss"]))
    assert [row["best"] for row in rows] == ["*", "", "", ""]
    for row in rows[:2]:
        env = json.loads((Path(row["run_dir"]) / "env.json").read_text())
        assert env == {"WANDB_MODE": "offline", "WANDB_RUN_ID": row["run"], "WANDB_RUN_GROUP": "stand-in"}
    assert f"best: {rows[0]['run']}" in capsys.readouterr().out


@pytest.mark.slow
def test_offline_sweep_of_real_fits(tmp_path, monkeypatch):
    shards = tmp_path / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=4, max_seconds=4))
    config = yaml.safe_load(SHIPPED.read_text())
    config["parameters"] = {
        "model.init_args.arch": {"values": ["mlp", "cnn"]},
        "model.init_args.lr": {"values": [0.001, 0.01]},
    }
    path = write_yaml(tmp_path / "sweep.yaml", config)
    for name, value in {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_BASE_URL": CLOSED_PORT,
        "WANDB_SILENT": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)  # the sweep's command names its configs relative to the repository
    out = tmp_path / "sweep"
    overrides = [
        f"--data.init_args.root={shards}",
        "--data.init_args.num_workers=0",
        "--data.init_args.train_samples_per_epoch=32",
        "--trainer.max_steps=4",
        "--trainer.max_epochs=-1",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.log_per_au=false",
    ]
    assert sweep(path, out=out, overrides=overrides) == 0

    rows = read_summary(out)
    assert {(row["model.init_args.arch"], float(row["model.init_args.lr"])) for row in rows} == {
        (arch, lr) for arch in ("mlp", "cnn") for lr in (0.001, 0.01)
    }
    maes = [float(row["val/mae"]) for row in rows]
    assert all(math.isfinite(mae) and mae > 0 for mae in maes)
    assert [row["best"] for row in rows] == ["*" if mae == min(maes) else "" for mae in maes]
    for row in rows:
        run_dir = Path(row["run_dir"])
        wandb_runs = list(run_dir.glob(f"wandb/offline-run-*-{row['run']}"))
        assert len(wandb_runs) == 1, f"no offline W&B run for {row['run']}"
        assert b"cause_arch_lr" in (wandb_runs[0] / f"run-{row['run']}.wandb").read_bytes(), "run group"
        resolved = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["init_args"]
        assert (resolved["arch"], resolved["lr"]) == (row["model.init_args.arch"], float(row["model.init_args.lr"]))
    logs = "\n".join(log.read_text(errors="replace") for log in out.rglob("*.log"))
    assert "127.0.0.1:9" not in logs and "connection refused" not in logs.lower()
