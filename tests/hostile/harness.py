"""Run one hostile-input case of ``cause-pl`` in this process and check its whole outcome.

A :class:`Case` is a row of a table: the command line (built from the :class:`~tests.hostile.inputs.Kit` of
real files and the empty work folder the command runs in), the exit code, the fragments its one stderr
line must contain, and what it may leave in the work folder. :func:`check_case` asserts all of it: the
exit code; on failure exactly one line ``cause-pl CMD: ...`` (or, for parser errors, argparse's usage
text ending in one ``error:`` line), no traceback and the work folder byte for byte as before (outputs
written there beforehand included); on success the new files, and any extra check of the output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cause_pl.cli.main import main

PREVIOUS_OUTPUT = b"the output of an earlier run, which a failed run must leave as it is\n"

Argv = Callable[[Any, Path], Sequence[Any]]
"""``(kit, work) -> argv``; paths are turned into strings."""


@dataclass(frozen=True)
class Case:
    """One hostile input and the exact outcome expected of the command given it."""

    id: str
    argv: Argv
    code: int
    fragments: Callable[[Any, Path], Sequence[Any]] | Sequence[Any] = ()
    """What the error line must contain (the file, the problem); ``(kit, work) -> fragments`` or a list."""
    style: str = "line"
    """How a failure reads: ``line`` (one line), ``usage`` (argparse's usage text, the message last) or
    ``lightning`` (LightningCLI's parser message: ``cause-pl CMD: MESSAGE`` and a few indented lines) or
    ``last`` (one line ``cause-pl CMD: ...``, last, after the lines a Lightning trainer logs as it starts)."""
    keep: Sequence[str] = ()
    """Outputs written into the work folder before the run (:data:`PREVIOUS_OUTPUT`; a name ending in ``/``
    is an empty folder)."""
    makes: Sequence[str] = ()
    """Files a successful run leaves in the work folder (relative paths)."""
    check: Callable[[Any, Path, str], None] | None = None
    """``(kit, work, stdout)``: more checks of a successful run's output."""
    marks: Sequence[Any] = field(default_factory=tuple)

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=list(self.marks))


def params(cases: Sequence[Case]) -> list[Any]:
    """``pytest.param`` per case; ids must be distinct across the table."""
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    return [case.param() for case in cases]


def run_main(capsys, argv: Sequence[Any]) -> tuple[int, str, str]:
    """``cause-pl ARGV`` in this process: exit code, stdout, stderr."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with the bytes of the files (None for folders)."""
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in folder.rglob("*")}


def visible_lines(err: str) -> list[str]:
    """The lines of ``err`` a terminal shows: text before a carriage return is overwritten (progress bars
    that clear themselves, as tqdm's ``leave=False`` does, leave nothing)."""
    lines = (line.split("\r")[-1] for line in err.split("\n"))
    return [line for line in lines if line.strip()]


def assert_one_line(err: str, prog: str, fragments: Sequence[Any]) -> None:
    lines = visible_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), err[-3000:]
    assert "Traceback" not in err
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])


def assert_usage_text(err: str, prog: str, fragments: Sequence[Any]) -> None:
    """A parser error as jsonargparse prints it: ``usage: PROG ...`` first, then ``error: MESSAGE`` (the
    message may go on over a few indented lines, e.g. the choices a value is not among)."""
    lines = visible_lines(err)
    starts = [index for index, line in enumerate(lines) if line.startswith("error: ")]
    assert lines and lines[0].startswith(f"usage: {prog}") and len(starts) == 1, err[-3000:]
    message = " ".join(line.strip() for line in lines[starts[0] :])
    assert len(lines) - starts[0] <= 4 and "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert str(fragment) in message, (fragment, message)


def assert_lightning_message(err: str, prog: str, fragments: Sequence[Any]) -> None:
    """LightningCLI's parser error as :func:`cause_pl.cli.main.lightning_cli` shows it."""
    lines = err.strip().splitlines()
    assert lines and lines[0].startswith(f"{prog}: ") and len(lines) <= 14, err[-3000:]
    assert all(line.startswith("  ") for line in lines[1:]) and "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert str(fragment) in err, (fragment, err[-3000:])


def assert_last_line(err: str, prog: str, fragments: Sequence[Any]) -> None:
    """One line ``PROG: ...``, the last, after what a Lightning trainer logs while it starts (seed, devices)."""
    lines = visible_lines(err)
    ours = [line for line in lines if line.startswith(f"{prog}: ")]
    assert len(ours) == 1 and lines[-1] == ours[0] and "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert str(fragment) in ours[0], (fragment, ours[0])


STYLES = {
    "line": assert_one_line,
    "usage": assert_usage_text,
    "lightning": assert_lightning_message,
    "last": assert_last_line,
}


def check_case(case: Case, kit: Any, work: Path, capsys, monkeypatch) -> str:
    """Run ``case`` in ``work`` (also the current folder) and assert its outcome; return stdout."""
    monkeypatch.chdir(work)  # anything written to a default, relative path lands in work too
    for name in case.keep:
        if name.endswith("/"):
            (work / name).mkdir(parents=True)
            continue
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(PREVIOUS_OUTPUT)
    before = snapshot(work)
    argv = [str(arg) for arg in case.argv(kit, work)]
    code, out, err = run_main(capsys, argv)
    assert code == case.code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    if code == 0:
        assert files_under(work) - set(before) == set(case.makes), err[-3000:]
        if case.check is not None:
            case.check(kit, work, out)
        return out
    fragments = case.fragments(kit, work) if callable(case.fragments) else case.fragments
    prog = f"cause-pl {argv[0]}"
    STYLES[case.style](err, prog, fragments)
    assert snapshot(work) == before  # no output, partial file or folder left; earlier outputs unchanged
    return out
