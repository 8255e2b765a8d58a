"""Thread and worker defaults follow the CPUs a job may use (its affinity mask), not the machine's count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

DEFAULTS_UNDER_ONE_CPU = """
import os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from cause_pl.cpus import usable_cpus
from cause_pl.demo.plan import DemoPlan
from cause_pl.shards.encode import DEFAULT_WORKERS
print(usable_cpus(), DemoPlan().gan_threads, DEFAULT_WORKERS, os.cpu_count())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity masks on this OS")
def test_a_job_pinned_to_one_cpu_gets_one_thread_and_one_worker() -> None:
    """As under ``taskset -c 0`` or Slurm's ``--cpus-per-task=1``: the demo's GAN threads and the
    recipes' workers drop to 1 while ``os.cpu_count()`` still counts the whole machine."""
    done = subprocess.run([sys.executable, "-c", DEFAULTS_UNDER_ONE_CPU], capture_output=True, text=True, check=True)
    cpus, gan_threads, workers, machine = map(int, done.stdout.split())
    assert (cpus, gan_threads, workers) == (1, 1, 1)
    assert machine == os.cpu_count()
