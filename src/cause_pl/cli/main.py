"""The ``cause-pl`` command line.

``fit``, ``validate``, ``test`` and ``predict`` are a LightningCLI (OmegaConf mode) over any
LightningModule / LightningDataModule named in the config (``class_path``), so the same command
trains CAUSE and GANimation. ``estimate``, ``animate``, ``table1``, ``ganimation-eval``, ``demo``
and ``sweep`` are commands of their own: typed functions run by :mod:`cause_pl.cli.command`, so
they take ``--config`` and ``--print_config`` and spell flags like LightningCLI (``--cause_ckpt``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cause_pl.cli.command import EXIT_USAGE, Command, run_as_command, split_debug_flag

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
MAX_PARSER_LINES = 12
"""At most this many lines of a LightningCLI parser message are shown."""


def lightning_cli(argv: Sequence[str], debug: bool = False) -> int:
    """Run a LightningCLI subcommand, e.g. ``cause-pl fit --config BASE.yaml --config OVERLAY.yaml``.

    A config the parser rejects (an unknown key, a missing file, a value of the wrong type) is the parser's
    message, without the chained traceback, and exit 2; ``debug`` re-raises it instead.
    """
    import pytorch_lightning as pl
    from jsonargparse import ArgumentError
    from pytorch_lightning.cli import LightningCLI

    try:
        LightningCLI(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=None if list(argv) == sys.argv[1:] else list(argv),  # None: LightningCLI reads sys.argv itself
            parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
            save_config_kwargs={"overwrite": True},
        )
    except ArgumentError as error:
        if debug:
            raise
        lines = [line.rstrip() for line in str(error).strip().splitlines() if line.strip()]
        print(f"cause-pl {argv[0]}: {lines[0] if lines else 'invalid arguments'}", file=sys.stderr)
        for line in lines[1:MAX_PARSER_LINES]:
            print(f"  {line}", file=sys.stderr)
        print(f"  (see cause-pl {argv[0]} --help)", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _commands() -> dict[str, Command]:
    from cause_pl.cli.animate import animate
    from cause_pl.cli.demo import demo
    from cause_pl.cli.estimate import estimate
    from cause_pl.cli.ganimation_eval import ganimation_eval
    from cause_pl.cli.sweep import sweep
    from cause_pl.cli.table1 import table1

    return {
        "estimate": estimate,
        "animate": animate,
        "table1": table1,
        "ganimation-eval": ganimation_eval,
        "demo": demo,
        "sweep": sweep,
    }


USAGE = """usage: cause-pl COMMAND [options]

Lightning commands (configs in experiments/):
  fit | validate | test | predict --config CONFIG.yaml [--trainer.X=...] [--model.X=...] [--data.X=...]
Other commands:
  estimate AUDIO --ckpt CKPT --out aus.csv     AU track (OpenFace-style CSV, 25 fps) of an audio file
  animate --audio A --face F --cause_ckpt C --ganimation_ckpt G --out out.mp4
                                               a still face animated by speech (mp4 with sound)
  table1 --shards DIR --ckpt CKPT [CKPT ...]   the paper's Table 1 (MAE/MSE with 95% CIs, Zero baseline)
  ganimation-eval --ckpt CKPT --shards DIR     AU error and identity score of a GANimation checkpoint
  demo [--out demo_out] [--quick]              the main job on built-in synthetic data
  sweep SWEEP.yaml [--count N] [-- OVERRIDES]  run a W&B sweep file locally and offline (grid/random)

Each takes --config FILE.yaml, prints its effective config with --print_config and spells flags
with underscores, as LightningCLI does. Run `cause-pl COMMAND --help` for a command's options.
An error is one line and exit 1 (bad input or data), 2 (usage) or 3 (OS or disk); any command
takes --debug to show the traceback instead."""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``cause-pl COMMAND ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in LIGHTNING_COMMANDS:
        argv, debug = split_debug_flag(argv)
        return lightning_cli(argv, debug)
    commands = _commands()
    if command not in commands:
        print(f"cause-pl: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if command == "sweep":
        from cause_pl.cli.sweep import overrides_as_flag

        rest = overrides_as_flag(rest)
    return run_as_command(commands[command], rest, prog=f"cause-pl {command}")


if __name__ == "__main__":
    sys.exit(main())
