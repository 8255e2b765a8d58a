"""One writer per output folder: an advisory ``flock`` on ``OUT/.lock`` (docs/design.md, "rejected.jsonl, ...").

The kernel releases a ``flock`` when its holder exits, however it exits, so a run killed with ``kill -9``
never leaves a stale lock and the next run resumes as usual. The file holds the holder's pid, for the
message a second run prints, and is emptied on release but left in place (deleting a locked file would
let two runs lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cause_pl.shards.schema import ShardError

LOCK_FILE = ".lock"


class FolderInUseError(ShardError):
    """Another run holds the lock of an output folder (exit 1, like other shard errors)."""


@contextmanager
def exclusive_folder(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s lock for the ``with`` block, or raise :class:`FolderInUseError` at once."""
    descriptor = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderInUseError(
                f"{out_dir} is in use by another run (pid {holder}); wait for it or choose another --out"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # empty again, so finished runs leave identical folders
    finally:
        os.close(descriptor)  # closing the only descriptor releases the lock
