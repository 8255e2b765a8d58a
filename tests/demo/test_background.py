"""``BackgroundJob``: a function in a spawned process, its output in a log file, its result or error back."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cause_pl.demo.background import BackgroundJob


def report_and_double(value: int) -> tuple[int, int, bool]:
    print(f"doubling {value}")
    return 2 * value, os.getpid(), multiprocessing.current_process().daemon


def fail_loudly(path: str) -> None:
    print("about to fail")
    raise FileNotFoundError(f"{path}: no such shard folder")


def test_the_result_comes_back_from_another_process_and_its_output_goes_to_the_log(tmp_path: Path) -> None:
    job = BackgroundJob(report_and_double, 21, log=tmp_path / "job.log")
    doubled, pid, daemon = job.result()
    assert doubled == 42 and pid != os.getpid()
    assert not daemon  # so that the job may start data-loader workers of its own
    assert (tmp_path / "job.log").read_text() == "doubling 21\n"


def test_the_jobs_error_is_raised_by_result(tmp_path: Path) -> None:
    job = BackgroundJob(fail_loudly, "/data/faces", log=tmp_path / "job.log")
    with pytest.raises(FileNotFoundError, match="/data/faces: no such shard folder"):
        job.result()
    assert (tmp_path / "job.log").read_text() == "about to fail\n"


def test_demo_rejects_an_unknown_precision_before_building_anything(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "cause_pl.cli.main", "demo", "--out", str(tmp_path / "out"), "--precision", "16"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "precision" in result.stderr
    assert not (tmp_path / "out").exists()
