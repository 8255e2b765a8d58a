"""Where shard bytes come from: ``shard_url`` templates, ``pipe:`` commands and plain paths.

index.json (always read from a data module's ``root``, a local copy of the manifest) names the
shards; by default each one is read from ``root/NAME``. A ``shard_url`` template reads them from
elsewhere: ``{name}`` stands for the shard's file name from index.json, for every split.

- ``/scratch/vox/{name}``: a plain path, e.g. a copy on a shared filesystem (relative paths are
  relative to the working directory, not to ``root``).
- ``pipe:COMMAND``: the shard is the standard output of ``COMMAND``, e.g.
  ``pipe:aws s3 cp s3://bucket/vox/{name} -``, ``pipe:gsutil cat gs://bucket/vox/{name}``,
  ``pipe:curl -sSfL https://host/vox/{name}``, ``pipe:cat /mnt/lustre/vox/{name}``. The command
  runs without a shell (split with :func:`shlex.split`; pipes, redirections and ``$VARS`` are not
  interpreted); its output is read as a stream. A command that cannot start, or exits with a
  non-zero status, is a read error (:class:`CommandFailedError`, with the end of its stderr), which the
  data module skips and counts, or raises with ``strict=True``. So is a command that stalls: when a
  read waits more than ``timeout`` seconds for its output (the data modules' ``pipe_timeout``,
  default :data:`DEFAULT_PIPE_TIMEOUT`), the command is killed (:class:`CommandTimeoutError`).

Brace ranges: webdataset users list shards as ``s3://bucket/vox/speech_au-train-{000000..000009}.tar``.
Here the names come from index.json, so a template never needs a range: ``{name}`` already stands
for every shard of every split, and the rank/worker split works on that list exactly as for local
shards. A template without ``{name}`` is refused, with this advice when it holds a brace range.
Braces other than ``{name}`` are passed through literally (e.g. a JSON argument of a command).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, cast

PIPE = "pipe:"
NAME = "{name}"
READ_BUFFER = 1 << 20
"""Bytes read ahead from a shard file or command: large reads suit network filesystems and pipes."""
STDERR_TAIL = 2000
"""Bytes of a failed command's stderr (its end) quoted in its error."""
DEFAULT_PIPE_TIMEOUT = 600.0
"""Seconds a read of a ``pipe:`` command's output may wait before the command is killed (a stalled download)."""

_BRACE_RANGE = re.compile(r"\{[^{}]*(\.\.|,)[^{}]*\}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class CommandFailedError(OSError):
    """A ``pipe:`` command could not start or exited with a non-zero status (a shard read error)."""


class CommandTimeoutError(CommandFailedError):
    """A ``pipe:`` command sent nothing for longer than its time-out while it was read, and was killed."""


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` if it is None or a positive finite number of seconds, else a ValueError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
        raise ValueError(f"pipe_timeout must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


def check_url_template(template: str) -> str:
    """``template`` if it is a usable ``shard_url``; otherwise a ValueError saying what to write instead."""
    if not isinstance(template, str) or NAME not in template:
        advice = (
            " Shard names come from index.json, so write the place once instead of a brace range, "
            "e.g. 'pipe:aws s3 cp s3://bucket/vox/{name} -' instead of "
            "'s3://bucket/vox/speech_au-train-{000000..000009}.tar'."
            if isinstance(template, str) and _BRACE_RANGE.search(template)
            else ""
        )
        raise ValueError(
            f"shard_url={template!r} has no {NAME} placeholder for the shard's file name "
            f"(e.g. '/scratch/vox/{NAME}' or 'pipe:cat /mnt/lustre/vox/{NAME}').{advice}"
        )
    if template.startswith(PIPE):
        try:
            shlex.split(template[len(PIPE) :])
        except ValueError as error:
            raise ValueError(f"shard_url={template!r}: the command cannot be split into arguments: {error}") from error
    elif _SCHEME.match(template):
        raise ValueError(
            f"shard_url={template!r}: only plain paths and 'pipe:' commands are read; for object storage use a "
            f"command that writes the shard to stdout, e.g. 'pipe:aws s3 cp s3://bucket/vox/{NAME} -'"
        )
    return template


def shard_url(template: str | None, root: str | Path, name: str) -> str:
    """Where shard ``name`` is read from: ``root/name`` without a template, else the template filled in.

    In a ``pipe:`` command the name is shell-quoted (a no-op for the names recipes write), so it
    stays one argument.
    """
    if template is None:
        return str(Path(root) / name)
    return template.replace(NAME, shlex.quote(name) if template.startswith(PIPE) else name)


@contextmanager
def open_shard(url: str, timeout: float | None = DEFAULT_PIPE_TIMEOUT) -> Iterator[IO[bytes]]:
    """A readable binary stream of the shard at ``url`` (a path, or ``pipe:COMMAND`` with a read ``timeout``)."""
    if url.startswith(PIPE):
        with command_output(url[len(PIPE) :], timeout) as stream:
            yield stream
    else:
        with open(url, "rb", buffering=READ_BUFFER) as stream:
            yield stream


class _Watchdog:
    """Kills ``process`` when a read of its output has waited more than ``timeout`` seconds."""

    def __init__(self, process: subprocess.Popen, stdout: IO[bytes], timeout: float) -> None:
        self.process, self.stdout, self.timeout = process, stdout, timeout
        self.waiting_since: float | None = None
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pipe-timeout", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        period = min(1.0, self.timeout / 4)
        while not self._stop.wait(period):
            since = self.waiting_since
            if since is not None and time.monotonic() - since > self.timeout and self.process.poll() is None:
                self.fired = True
                self.process.kill()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def read(self, size: int = -1) -> bytes:
        self.waiting_since = time.monotonic()
        try:
            return self.stdout.read(size)
        finally:
            self.waiting_since = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.stdout, name)


@contextmanager
def command_output(command: str, timeout: float | None = DEFAULT_PIPE_TIMEOUT) -> Iterator[IO[bytes]]:
    """The standard output of ``command`` (run without a shell) as a stream; its exit status is checked.

    - The reader finishes: the rest of the output is drained, then a non-zero exit raises :class:`CommandFailedError`.
    - The reader fails (e.g. a tar error): if the output had ended and the command failed, the
      command's failure is raised (chained to the reader's error), since it is the cause; if the
      output had not ended, the bytes themselves were bad: the command is killed, the error re-raised.
    - The reader stops early (a closed generator, an interrupt): the command is killed, nothing more.
    - A read (the reader's or the final drain) waits more than ``timeout`` seconds: the command is
      killed and :class:`CommandTimeoutError` raised (also when the reader failed on the cut-off output).
    """
    arguments = shlex.split(command)
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, bufsize=READ_BUFFER
            )
        except OSError as error:
            raise CommandFailedError(f"command `{command}` could not start: {error}") from error
        assert process.stdout is not None  # stdout=PIPE
        raw = process.stdout
        watchdog = None if timeout is None else _Watchdog(process, raw, timeout)
        stdout = cast(IO[bytes], raw if watchdog is None else watchdog)
        try:
            yield stdout
        except Exception as error:
            if watchdog is not None and watchdog.fired:
                raise _timed_out(command, timeout) from error
            if stdout.read(1):
                raise
            _check_exit(process, command, stderr, cause=error)
            raise
        else:
            while stdout.read(READ_BUFFER):
                pass
            if watchdog is not None and watchdog.fired:
                raise _timed_out(command, timeout)
            _check_exit(process, command, stderr)
        finally:
            if watchdog is not None:
                watchdog.stop()
            if process.poll() is None:
                process.kill()
            process.wait()
            raw.close()


def _timed_out(command: str, timeout: float | None) -> CommandTimeoutError:
    return CommandTimeoutError(
        f"command `{command}` sent no output for {timeout:g} s and was killed (pipe_timeout; None waits forever)"
    )


def _check_exit(process: subprocess.Popen, command: str, stderr: BinaryIO, cause: Exception | None = None) -> None:
    """Raise :class:`CommandFailedError` (with the end of its stderr) if ``process`` exits with a non-zero status."""
    status = process.wait()
    if status == 0:
        return
    size = stderr.seek(0, 2)
    stderr.seek(max(size - STDERR_TAIL, 0))
    tail = stderr.read().decode("utf-8", "replace").strip()
    raise CommandFailedError(f"command `{command}` exited with status {status}: {tail or '(no stderr)'}") from cause
