"""Atomic output files: written under a temporary name in the target's folder, renamed when complete.

Every file the library writes for a user (AU CSVs, Table 1, mp4s, gifs, png strips, figures) goes
through :func:`atomic_output`, so a run that fails part-way never leaves a truncated file and never
damages the file a previous run wrote: the previous file stays byte-for-byte as it was until the
new one is complete, then ``os.replace`` swaps it in (atomic on POSIX and Windows within a folder).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

PARTIAL_SUFFIX = ".partial"
"""Suffix of the temporary files (``.NAME.<random>.partial``, hidden, next to ``NAME``)."""


def atomic_output(path: str | Path) -> AtomicOutput:
    """Write ``path`` atomically: ``with atomic_output(path) as temporary:``, then write ``temporary``.

    See :class:`AtomicOutput`.
    """
    return AtomicOutput(path)


class AtomicOutput:
    """One atomic write of ``path``; a context manager that yields the temporary path.

    ``temporary`` is a fresh, not yet created path in ``path``'s folder (created if missing). When
    the block ends normally the temporary file is flushed to disk and renamed over ``path``; when it
    raises, the temporary file is removed and ``path`` is left untouched. Writers whose lifetime is
    not one ``with`` block (:class:`cause_pl.media.mp4.Mp4Writer`) call :meth:`commit` or
    :meth:`discard` themselves. The new file gets the usual permissions (umask), not the old file's.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}")

    def commit(self) -> Path:
        """Flush the finished temporary file to disk and rename it over ``path``; returns ``path``."""
        if not self.temporary.exists():
            raise FileNotFoundError(f"{self.path}: nothing was written to {self.temporary.name}")
        try:
            _fsync(self.temporary)
            os.replace(self.temporary, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (if any); ``path`` is not touched."""
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to disk, so the rename never exposes an empty file after a crash."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
