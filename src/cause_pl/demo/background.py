"""Work that runs in a second process beside demo stages.

The speech corpus and CAUSE's small convolutions keep one thread busy at most, so the face corpus
and then the face AU reader are built beside them on the other core (one spawned process instead of
a pool per corpus: each spawn imports torch again). (Training CAUSE beside GANimation instead was
measured slower on 2 cores: the two trainings and their data workers thrashed, 198 s against 159 s
in a row.) :class:`BackgroundJob` runs a function in a spawned process with its output going to a
log file.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")


def _run_logged(function: Callable[..., Result], log: Path, args: tuple[Any, ...], sender: Connection) -> None:
    """The child's side: ``function(*args)`` with output to ``log``; sends ``(True, result)`` or
    ``(False, error)``, the error carrying the child's traceback as a note."""
    try:
        with log.open("w") as stream, redirect_stdout(stream), redirect_stderr(stream):
            outcome: tuple[bool, Any] = (True, function(*args))
    except Exception as error:  # handed to the parent, which raises it from result()
        error.add_note(
            f"raised in the background job (log {log}):\n" + "".join(traceback.format_tb(error.__traceback__))
        )
        outcome = (False, error)
    try:
        sender.send(outcome)
    except Exception as unsendable:
        sender.send((False, RuntimeError(f"background job: {outcome[1]!r} cannot be sent back ({unsendable})")))


class BackgroundJob(Generic[Result]):
    """``function(*args)`` in a spawned process (not a daemon: it may start data workers); its
    stdout and stderr go to ``log``. :meth:`result` waits and re-raises the job's exception. As a
    context manager, leaving the block stops a job still running (a failed stage does not wait for it)."""

    def __init__(self, function: Callable[..., Result], *args: Any, log: Path) -> None:
        self.log = log
        context = multiprocessing.get_context("spawn")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_logged, args=(function, log, args, sender))
        self._process.start()
        sender.close()  # the child holds the only sending end: its death ends recv() with EOFError

    @property
    def running(self) -> bool:
        """Whether the job's process is still alive."""
        return self._process.is_alive()

    def result(self) -> Result:
        try:
            succeeded, value = self._receiver.recv()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"background job died without a result (exit code {self._process.exitcode}); see {self.log}"
            ) from None
        self._process.join()
        if not succeeded:
            raise value
        return value

    def stop(self) -> None:
        """Terminate the job if it still runs, and wait for it."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receiver.close()

    def __enter__(self) -> BackgroundJob[Result]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
