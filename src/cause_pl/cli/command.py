"""Run a typed, documented function as a command line, with jsonargparse building the parser from its signature.

Every command (``cause-pl estimate``, ..., the scripts in ``data_recipes/``) is one function. Flags are the
parameter names (``--cause_ckpt``), the spelling LightningCLI and YAML configs use; parameters without a
default are positionals, keyword-only ones (after ``*``) are required flags, and dataclass parameters are
groups (``--frontend.fps``). ``--config FILE.yaml`` reads values from a file, ``--print_config`` prints the
effective config as YAML (a file that reproduces the run), and ``--help`` shows the docstring: its summary,
its description and, per flag, its Google-style ``Args:`` entry. Two conveniences over jsonargparse's own
spellings: a ``bool`` flag given alone means true (``--quick``, still ``--quick=false``), and a ``list[...]``
parameter without a default takes space-separated values (``--ckpt a.ckpt b.ckpt``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from typing import get_args, get_origin, get_type_hints

import docstring_parser
from jsonargparse import ActionConfigFile, ArgumentParser

Command = Callable[..., int]


class UsageError(Exception):
    """Bad command-line input that a command finds itself; reported like a parser error (usage, exit 2)."""


def command_parser(function: Command, prog: str | None = None) -> ArgumentParser:
    """The parser of ``function``'s parameters, plus ``--config`` and ``--print_config``."""
    docstring = docstring_parser.parse(function.__doc__ or "")
    description = "\n\n".join(text for text in (docstring.short_description, docstring.long_description) if text)
    parser = ArgumentParser(prog=prog, description=description)
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
    """Parse ``argv`` (default: ``sys.argv[1:]``) for ``function``, call it and return its exit code."""
    parser = command_parser(function, prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    reject_dashed_flags(parser, argv)
    config = parser.parse_args(argv)
    try:
        values = parser.instantiate(config)  # builds dataclass groups, which may reject their values
    except ValueError as error:
        parser.error(str(error))
    try:
        return function(**{name: values[name] for name in inspect.signature(function).parameters})
    except UsageError as error:
        parser.error(str(error))


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
