"""The CPUs this process may compute on: how many, and whether they compute in bf16 natively."""

from __future__ import annotations

import os
from pathlib import Path


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS keeps one (Linux: Slurm's
    ``--cpus-per-task``, ``taskset``, cpusets), else every CPU. ``os.cpu_count()`` counts the
    whole machine, so sizing threads by it oversubscribes a job given part of a node."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity masks here (macOS, Windows)
        return os.cpu_count() or 1


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX; Linux ``/proc/cpuinfo``)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
