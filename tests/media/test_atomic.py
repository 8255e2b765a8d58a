"""atomic_output: the previous file survives a failed write, and no temporary file is left."""

from __future__ import annotations

import errno
import os

import pytest

from cause_pl.media.atomic import PARTIAL_SUFFIX, AtomicOutput, atomic_output


def test_a_complete_write_replaces_the_file_and_leaves_only_it(tmp_path):
    path = tmp_path / "out.csv"
    path.write_bytes(b"old")
    with atomic_output(path) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(PARTIAL_SUFFIX)
        assert not temporary.exists()
        temporary.write_bytes(b"new contents")
        assert path.read_bytes() == b"old"  # not visible until the block ends
    assert path.read_bytes() == b"new contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_bytes(b"previous run")

    def write_then_disk_full() -> None:
        with atomic_output(path) as temporary:
            temporary.write_bytes(b"half a fi")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match="No space left"):
        write_then_disk_full()
    assert path.read_bytes() == b"previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "nested" / "deeper" / "out.png"

    def write_then_interrupt() -> None:
        with atomic_output(path) as temporary:
            temporary.write_bytes(b"partial")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_then_interrupt()
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # the folder is created, nothing left in it


def test_temporary_names_are_unique_per_write(tmp_path):
    first, second = AtomicOutput(tmp_path / "a.md"), AtomicOutput(tmp_path / "a.md")
    assert first.temporary != second.temporary


def test_commit_without_a_written_file_is_an_error_and_keeps_the_target(tmp_path):
    path = tmp_path / "a.md"
    path.write_text("kept")
    output = AtomicOutput(path)
    with pytest.raises(FileNotFoundError, match=r"a\.md: nothing was written"):
        output.commit()
    assert path.read_text() == "kept"


def test_manual_commit_and_discard(tmp_path):
    path = tmp_path / "clip.mp4"
    output = AtomicOutput(path)
    output.temporary.write_bytes(b"video")
    assert output.commit() == path and path.read_bytes() == b"video"
    other = AtomicOutput(path)
    other.temporary.write_bytes(b"broken")
    other.discard()
    other.discard()  # idempotent
    assert path.read_bytes() == b"video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
