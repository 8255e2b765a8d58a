"""Run a typed, documented function as a command line, with jsonargparse building the parser from its signature.

Every command (``cause-pl estimate``, ..., the scripts in ``data_recipes/``) is one function. Flags are the
parameter names (``--cause_ckpt``), the spelling LightningCLI and YAML configs use; parameters without a
default are positionals, keyword-only ones (after ``*``) are required flags, and dataclass parameters are
groups (``--frontend.fps``). ``--config FILE.yaml`` reads values from a file, ``--print_config`` prints the
effective config as YAML (a file that reproduces the run), and ``--help`` shows the docstring: its summary,
its description and, per flag, its Google-style ``Args:`` entry. Two conveniences over jsonargparse's own
spellings: a ``bool`` flag given alone means true (``--quick``, still ``--quick=false``), and a ``list[...]``
parameter without a default takes space-separated values (``--ckpt a.ckpt b.ckpt``).

:func:`run_as_command` is also the one error boundary of every command and recipe (*docs/design.md*,
section 6): an error the project expects (a bad file, a bad value, a full disk, a closed pipe) is one line
``PROG: what went wrong (the file)`` on stderr and an exit code from :data:`EXIT_CODES`; anything else is a
bug and keeps its traceback, as does everything under ``--debug``.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, get_args, get_origin, get_type_hints

import docstring_parser
from jsonargparse import ActionConfigFile, ArgumentParser

Command = Callable[..., int]

EXIT_DATA = 1
"""Bad input or data: a checkpoint, audio file, image, OpenFace CSV, shard or sweep file we cannot use."""
EXIT_USAGE = 2
"""Bad command line: a parser error or a :class:`UsageError` (an unknown device, a missing checkpoint flag),
or an installed OpenCV without the face cascades alignment needs (``--no_align`` goes without)."""
EXIT_OS = 3
"""The operating system said no: file or folder missing, permission, a file where a folder should be,
a full disk, a closed output pipe, a failed ``pipe:`` shard command."""
EXIT_CODES = {0: "success", EXIT_DATA: "bad input or data", EXIT_USAGE: "usage error", EXIT_OS: "OS or disk error"}

EPILOG = "An error is one line and exit 1 (bad input or data), 2 (usage) or 3 (OS or disk); --debug: its traceback."

DEBUG_FLAG = "--debug"
"""Handled by :func:`run_as_command` for every command: show the traceback of any error."""

OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    BrokenPipeError,
)
WORKER_ERROR = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")
"""How torch re-raises a DataLoader worker's exception: same type, its traceback in the message."""
OS_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOENT, errno.EIO, errno.EFBIG})


class UsageError(Exception):
    """Bad command-line input that a command finds itself: one line and exit 2, like a parser error."""


def require_file(path: Path, flag: str) -> Path:
    """``path`` if it is a file; else the OS error saying why not, naming ``flag`` and the path (exit 3)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{flag}: is a directory, not a file", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, f"{flag}: file not found", str(path))
    return path


def require_output(path: Path, flag: str) -> Path:
    """``path`` once its folder exists; an OS error naming ``flag`` when it is a folder or its folder cannot be made."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{flag}: is a directory, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def command_parser(function: Command, prog: str | None = None) -> ArgumentParser:
    """The parser of ``function``'s parameters, plus ``--config`` and ``--print_config``."""
    docstring = docstring_parser.parse(function.__doc__ or "")
    description = "\n\n".join(text for text in (docstring.short_description, docstring.long_description) if text)
    parser = ArgumentParser(prog=prog, description=description, epilog=EPILOG)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config, e.g. one printed by --print_config")
    hints = get_type_hints(function)
    parameters = inspect.signature(function).parameters
    flags = {name for name, parameter in parameters.items() if hints.get(name) is bool and _has_default(parameter)}
    lists = {
        name
        for name, parameter in parameters.items()
        if get_origin(hints.get(name)) is list and not _has_default(parameter)
    }
    skip: set[str | int] = {*flags, *lists}  # added below, with friendlier spellings
    parser.add_function_arguments(function, as_positional=True, as_group=False, skip=skip)
    help_of = {param.arg_name: param.description for param in docstring.params}
    for name in flags:
        default = parameters[name].default
        parser.add_argument(f"--{name}", type=bool, nargs="?", const=True, default=default, help=help_of.get(name))
    for name in lists:
        (item,) = get_args(hints[name])
        positional = parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        option = {} if positional else {"required": True}
        parser.add_argument(name if positional else f"--{name}", type=item, nargs="+", help=help_of.get(name), **option)
    return parser


def run_as_command(function: Command, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) for ``function``, call it and return its exit code.

    The project's errors and the predictable OS errors become one line on stderr and ``SystemExit`` with a
    code of :data:`EXIT_CODES`, as parser errors do; other exceptions propagate with their traceback.
    ``--debug`` (anywhere before ``--``) re-raises everything.
    """
    argv, debug = split_debug_flag(sys.argv[1:] if argv is None else argv)
    parser = command_parser(function, prog)
    reject_dashed_flags(parser, argv)
    config = parser.parse_args(argv)
    try:
        values = parser.instantiate(config)  # builds dataclass groups, which may reject their values
    except ValueError as error:
        if debug:
            raise
        parser.error(str(error))
    try:
        return function(**{name: values[name] for name in inspect.signature(function).parameters})
    except Exception as error:
        fail(parser.prog, error, debug)


def fail(prog: str, error: Exception, debug: bool) -> NoReturn:
    """End on ``error``: one line and ``SystemExit`` with its code if the project expects it, else re-raise it.

    Like a parser error, every expected failure is a ``SystemExit``; a bug, and anything under ``--debug``,
    propagates with its traceback.
    """
    code = exit_code_of(error)
    if debug or code is None:
        raise error
    report(prog, error, code)
    raise SystemExit(code) from None


def split_debug_flag(argv: Sequence[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (only before a ``--``), and whether it was there."""
    argv = list(argv)
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [token for token in argv[:end] if token != DEBUG_FLAG]
    return [*kept, *argv[end:]], len(kept) < end


def exit_code_of(error: BaseException) -> int | None:
    """The exit code of an expected error, or None for a bug (which keeps its traceback)."""
    from cause_pl.faces.errors import DetectorUnavailableError
    from cause_pl.shards.urls import CommandFailedError

    if isinstance(error, (UsageError, DetectorUnavailableError)):
        return EXIT_USAGE
    if isinstance(error, (*OS_ERRORS, CommandFailedError)) or (isinstance(error, OSError) and error.errno in OS_ERRNOS):
        return EXIT_OS
    if isinstance(error, ValueError):  # AudioError, FaceImageError, OpenFaceError, ShardError, checkpoints, checks
        return EXIT_DATA
    return None


def error_line(error: BaseException) -> str:
    """One line saying what went wrong, with the file where the error names one."""
    if isinstance(error, BrokenPipeError):
        return "broken pipe: the reader of the output (stdout) closed it early"
    if isinstance(error, FileExistsError) and error.filename is not None and Path(error.filename).is_file():
        return f"a file is in the way of a folder: {error.filename}"  # mkdir(parents=True) under a regular file
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        target = f" -> {error.filename2}" if error.filename2 is not None else ""
        return f"{error.strerror}: {error.filename}{target}"
    message = str(error)
    if WORKER_ERROR.match(message):  # a DataLoader worker's error, re-raised with the worker's traceback
        message = message.strip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(message.split()) or type(error).__name__


def report(prog: str, error: BaseException, code: int) -> None:
    """Print ``PROG: message`` on stderr; after a broken pipe, stop Python's own flush of stdout failing again."""
    if isinstance(error, BrokenPipeError):  # the idiom of https://docs.python.org/3/library/signal.html#note-on-sigpipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a stdout without a descriptor (tests)
            os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    with contextlib.suppress(OSError):  # stderr gone too: the exit code still tells
        print(f"{prog}: {error_line(error)}", file=sys.stderr, flush=True)


def reject_dashed_flags(parser: ArgumentParser, argv: Sequence[str]) -> None:
    """Exit with a hint when a flag is spelled with dashes (``--cause-ckpt``) instead of ``--cause_ckpt``."""
    for token in argv:
        if token == "--":
            return
        flag = token.split("=", 1)[0]
        if not flag.startswith("--") or "-" not in flag[2:]:
            continue
        underscored = "--" + flag[2:].replace("-", "_")
        if underscored in parser._option_string_actions:  # argparse's table of every option string
            parser.error(f"unrecognized argument {flag}: did you mean {underscored}?")


def _has_default(parameter: inspect.Parameter) -> bool:
    return parameter.default is not inspect.Parameter.empty
