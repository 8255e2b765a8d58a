"""Cluster launch scripts: bash syntax, what the sbatch scripts hand to srun, and torchrun for real on CPU.

``srun`` is replaced by a fake on PATH that records its argv; the recorded ``cause-pl`` arguments are
then parsed by the real LightningCLI (``--print_config``), so a misspelt override fails here, not on
the cluster. The torchrun script runs 2 CPU processes (gloo) for a few steps (slow).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cause_pl.synthetic.corpus import SyntheticCorpusSpec, write_speech_corpus
from tests.cli.test_main import ROOT

SBATCH_SCRIPTS = {  # script -> (configs it trains, in order; DDP strategy it must use; passed by the script)
    "cause_cnn.sbatch": (("experiments/cause/voxceleb2.yaml", "experiments/cause/cnn.yaml"), "ddp", True),
    # celeba128.yaml sets its strategy itself, so the script and a plain `cause-pl fit` agree
    "ganimation_celeba128.sbatch": (
        ("experiments/ganimation/celeba128.yaml",),
        "ddp_find_unused_parameters_true",
        False,
    ),
}
TORCHRUN_SCRIPT = ROOT / "experiments" / "torchrun" / "cause_cnn.sh"
ALL_SCRIPTS = [ROOT / "experiments" / "slurm" / name for name in SBATCH_SCRIPTS] + [TORCHRUN_SCRIPT]


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda path: path.name)
def test_scripts_are_valid_bash(script: Path):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


def sbatch_directives(script: Path) -> dict[str, str]:
    """``#SBATCH --key=value`` lines (not the ``##SBATCH`` ones, which SLURM ignores)."""
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", script.read_text(), flags=re.MULTILINE))


@pytest.fixture
def fake_srun(tmp_path) -> tuple[Path, Path]:
    """A directory holding an ``srun`` that writes its argv (NUL-separated) to a file, and that file."""
    bin_dir, record = tmp_path / "bin", tmp_path / "srun.argv"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > '{record}'\n")
    srun.chmod(0o755)
    return bin_dir, record


def run_sbatch_body(script: Path, bin_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the batch script as SLURM would on the first node (from the repository root), srun faked."""
    full_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", str(script), *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", SBATCH_SCRIPTS)
def test_sbatch_launches_one_ddp_task_per_gpu(name: str, fake_srun):
    script = ROOT / "experiments" / "slurm" / name
    configs, strategy, passed = SBATCH_SCRIPTS[name]
    directives = sbatch_directives(script)
    assert int(directives["nodes"]) >= 1
    assert directives["ntasks-per-node"] == directives["gpus-per-node"], "one task per GPU"

    bin_dir, record = fake_srun
    slurm = {"SLURM_NNODES": "3", "SLURM_NTASKS_PER_NODE": "2", "CAUSE_PL_SHARDS": "/shared/shards/x"}
    result = run_sbatch_body(script, bin_dir, slurm, "--trainer.max_epochs=7")
    assert result.returncode == 0, result.stderr
    argv = record.read_text().split("\0")[:-1]
    config_args = [arg for config in configs for arg in ("--config", config)]
    assert argv[: 2 + len(config_args)] == ["cause-pl", "fit", *config_args]
    assert {"--trainer.num_nodes=3", "--trainer.devices=2", "--data.init_args.root=/shared/shards/x"} <= set(argv)
    strategies = [arg for arg in argv if arg.startswith("--trainer.strategy")]
    assert strategies == ([f"--trainer.strategy={strategy}"] if passed else [])
    assert argv[-1] == "--trainer.max_epochs=7", "extra sbatch arguments are passed through last"

    # The real LightningCLI accepts exactly these arguments and resolves them as intended.
    printed = subprocess.run(
        [sys.executable, "-m", "cause_pl.cli.main", *argv[1:], "--print_config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr[-3000:]
    resolved = yaml.safe_load(printed.stdout)
    trainer = resolved["trainer"]
    assert (trainer["num_nodes"], int(trainer["devices"]), trainer["strategy"]) == (3, 2, strategy)
    assert trainer["max_epochs"] == 7 and resolved["data"]["init_args"]["root"] == "/shared/shards/x"


def test_sbatch_outside_slurm_fails_before_srun(fake_srun):
    bin_dir, record = fake_srun
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    result = subprocess.run(
        ["bash", str(ROOT / "experiments" / "slurm" / "cause_cnn.sbatch")],
        cwd=ROOT,
        env={**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "SLURM_NNODES" in result.stderr
    assert not record.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_torchrun_script_trains_two_cpu_processes(tmp_path):
    shards = tmp_path / "speech_au"
    write_speech_corpus(shards, SyntheticCorpusSpec(speakers=6, utterances_per_speaker=8, shard_size=4, max_seconds=4))
    out, steps = tmp_path / "run", 4
    env = {
        **os.environ,
        "NPROC_PER_NODE": "2",
        "RDZV_ENDPOINT": f"localhost:{free_port()}",
        "RDZV_ID": "test",
        "CAUSE_PL_SHARDS": str(shards),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_BASE_URL": "http://127.0.0.1:9",
    }
    overrides = [
        "--trainer.accelerator=cpu",
        "--data.init_args.num_workers=0",
        "--data.init_args.batch_size=4",
        "--data.init_args.train_samples_per_epoch=32",
        "--data.init_args.shuffle_buffer=16",
        f"--trainer.max_steps={steps}",
        "--trainer.max_epochs=-1",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.log_per_au=false",
        f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}",
    ]
    result = subprocess.run(
        [str(TORCHRUN_SCRIPT), *overrides], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    # torchrun's two workers became the two DDP ranks (no worker launched processes of its own)
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert "distributed_backend=gloo" in output
    checkpoint = next(out.rglob("last.ckpt"))
    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"] == steps
