"""``BackgroundJob``: a function in a spawned process, its output in a log file, its result or error back."""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from pathlib import Path

import pytest

from cause_pl.demo.background import BackgroundJob


def report_and_double(value: int) -> tuple[int, int, bool]:
    print(f"doubling {value}")
    return 2 * value, os.getpid(), multiprocessing.current_process().daemon


def fail_loudly(path: str) -> None:
    print("about to fail")
    raise FileNotFoundError(f"{path}: no such shard folder")


def die_abruptly(code: int) -> None:
    os._exit(code)


def unpicklable_result() -> object:
    return lambda: None


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


def test_the_jobs_error_carries_its_traceback_from_the_other_process(tmp_path: Path) -> None:
    job = BackgroundJob(fail_loudly, "/data/faces", log=tmp_path / "job.log")
    with pytest.raises(FileNotFoundError) as raised:
        job.result()
    (note,) = raised.value.__notes__
    assert note.startswith(f"raised in the background job (log {tmp_path / 'job.log'})") and "in fail_loudly" in note


def test_a_job_that_dies_without_a_result_is_a_clear_error(tmp_path: Path) -> None:
    job = BackgroundJob(die_abruptly, 3, log=tmp_path / "job.log")
    with pytest.raises(RuntimeError, match=r"background job died without a result \(exit code 3\); see .*job\.log"):
        job.result()


def test_a_result_that_cannot_come_back_is_named(tmp_path: Path) -> None:
    job = BackgroundJob(unpicklable_result, log=tmp_path / "job.log")
    with pytest.raises(RuntimeError, match=re.escape("background job: <function unpicklable_result.<locals>.<lambda>")):
        job.result()
    assert not job.running


def a_stage_that_fails_beside_a_long_job(log: Path, jobs: list[BackgroundJob[None]]) -> None:
    with BackgroundJob(time.sleep, 120, log=log) as job:
        jobs.append(job)
        raise ValueError("the stage beside it failed")


def test_leaving_the_block_on_an_error_stops_the_job_at_once(tmp_path: Path) -> None:
    started, jobs = time.perf_counter(), []
    with pytest.raises(ValueError, match="the stage beside it failed"):
        a_stage_that_fails_beside_a_long_job(tmp_path / "job.log", jobs)
    (job,) = jobs
    assert not job.running and time.perf_counter() - started < 30  # not the 120 s the job would take
