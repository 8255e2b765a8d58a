"""Work that runs in a second process beside a demo stage.

CAUSE's small convolutions keep one thread busy at most, so the face AU reader trains beside it on
the other core. (Training CAUSE beside GANimation instead was measured slower on 2 cores: the two
trainings and their data workers thrashed, 198 s against 159 s in a row.) :class:`BackgroundJob`
runs a function in a spawned process with its output going to a log file.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")


def _run_logged(function: Callable[..., Result], log: Path, args: tuple[Any, ...]) -> Result:
    with log.open("w") as stream, redirect_stdout(stream), redirect_stderr(stream):
        return function(*args)


class BackgroundJob(Generic[Result]):
    """``function(*args)`` in a spawned process (not a daemon: it may start data workers); its
    stdout and stderr go to ``log``. :meth:`result` waits and re-raises the job's exception."""

    def __init__(self, function: Callable[..., Result], *args: Any, log: Path) -> None:
        self.log = log
        self._executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._future = self._executor.submit(_run_logged, function, log, args)

    def result(self) -> Result:
        try:
            return self._future.result()
        finally:
            self._executor.shutdown()
