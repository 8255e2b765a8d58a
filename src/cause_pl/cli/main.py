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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cause_pl.cli.command import EXIT_USAGE, Command, fail, run_as_command, split_debug_flag

if TYPE_CHECKING:
    from pytorch_lightning import Trainer
    from pytorch_lightning.cli import LightningCLI

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
MAX_PARSER_LINES = 12
"""At most this many lines of a LightningCLI parser message are shown."""
LIGHTNING_CKPT_NAMES = ("best", "last", "hpc", "registry")
"""``--ckpt_path`` values Lightning resolves itself rather than reading a file."""


def lightning_cli(argv: Sequence[str], debug: bool = False) -> int:
    """Run a LightningCLI subcommand, e.g. ``cause-pl fit --config BASE.yaml --config OVERLAY.yaml``.

    A config the parser rejects (an unknown key, a missing file, a value of the wrong type) is the parser's
    message, without the chained traceback, and exit 2. An error the project expects while the run is set up
    or runs (a bad checkpoint, a damaged shard, a GPU this machine lacks) is one line and its exit code, as
    for every other command (:func:`cause_pl.cli.command.fail`). ``debug`` re-raises either instead.
    """
    import pytorch_lightning as pl
    from jsonargparse import ArgumentError

    try:
        cause_cli_class()(
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
    except Exception as error:
        fail(f"cause-pl {argv[0]}", error, debug)
    return 0


def cause_cli_class() -> type[LightningCLI]:
    """LightningCLI with checked ``--ckpt_path`` files and one-line trainer misconfigurations.

    Defined on use, as Lightning is imported on use: ``cause-pl --help`` and the other commands start fast.
    """
    import importlib

    import torch
    from lightning_fabric.utilities.exceptions import MisconfigurationException
    from pytorch_lightning.cli import LightningCLI
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from cause_pl.cli.command import UsageError, require_file
    from cause_pl.models.checkpoints import (
        STATE_PREFIXES,
        accepted_hparams,
        check_class,
        check_finite_state,
        read_checkpoint,
    )

    class CauseCLI(LightningCLI):
        def _parse_ckpt_path(self) -> None:
            """Lightning's step that puts ``--ckpt_path``'s hyperparameters into the config, made safe and clear.

            The file is read by :func:`read_checkpoint` (a missing file, a refused pickle: one line) and must
            hold finite weights and statistics and the model class the config builds. A checkpoint saved
            outside LightningCLI (``cause-pl demo``, a notebook) has no ``_class_path``: the config's class is
            used. As in Lightning, the checkpoint's hyperparameters win over the config's; the values they
            change are listed.
            """
            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if not ckpt_path or "://" in ckpt_path or ckpt_path.split(":")[0] in LIGHTNING_CKPT_NAMES:
                return
            path = require_file(Path(ckpt_path), "--ckpt_path")
            checkpoint = read_checkpoint(path)
            check_finite_state(path, checkpoint.get("state_dict", {}))
            model = self.config[subcommand].model
            if (config_class := model.class_path.rsplit(".", 1)[-1]) in STATE_PREFIXES:
                check_class(path, checkpoint, config_class)
            class_path = checkpoint.get("hyper_parameters", {}).get("_class_path", model.class_path)
            module, name = class_path.rsplit(".", 1)
            hparams = accepted_hparams(getattr(importlib.import_module(module), name), checkpoint)
            if not hparams:
                return
            before = model.init_args.as_dict()
            loaded = {subcommand: {"model": {"class_path": class_path, "init_args": hparams}}}
            self.config = self.parser.parse_object(loaded, self.config)
            after = self.config[subcommand].model.init_args.as_dict()
            changed = [
                f"{key} {before[key]!r} -> {value!r}" for key, value in after.items() if before.get(key, value) != value
            ]
            if changed:  # on rank 0 only, like Lightning's own messages
                note = f"--ckpt_path {path}: its hyperparameters replace the config's: {', '.join(changed)}"
                rank_zero_only(print)(note, file=sys.stderr)

        def instantiate_trainer(self, **kwargs: Any) -> Trainer:
            """The trainer; an accelerator or device count this machine lacks is a :class:`UsageError`."""
            accelerator = self.config_init[self.subcommand].trainer.get("accelerator")
            mps = accelerator == "gpu" and torch.backends.mps.is_available()  # "gpu" is CUDA or Apple's MPS
            if accelerator in ("gpu", "cuda") and not torch.cuda.is_available() and not mps:
                raise UsageError(
                    f"--trainer.accelerator {accelerator}: no CUDA GPU is available on this machine "
                    "(torch.cuda.is_available() is false); use --trainer.accelerator cpu, or auto"
                )
            try:
                return super().instantiate_trainer(**kwargs)
            except MisconfigurationException as error:
                raise UsageError(f"trainer: {error}") from error

    return CauseCLI


def _commands() -> dict[str, Command]:
    from cause_pl.cli.animate import animate
    from cause_pl.cli.demo import demo
    from cause_pl.cli.estimate import estimate
    from cause_pl.cli.export import export
    from cause_pl.cli.ganimation_eval import ganimation_eval
    from cause_pl.cli.import_ganimation import import_ganimation
    from cause_pl.cli.mos import mos_build, mos_score
    from cause_pl.cli.stream import stream
    from cause_pl.cli.sweep import sweep
    from cause_pl.cli.table1 import table1

    return {
        "estimate": estimate,
        "animate": animate,
        "table1": table1,
        "ganimation-eval": ganimation_eval,
        "import-ganimation": import_ganimation,
        "demo": demo,
        "sweep": sweep,
        "stream": stream,
        "export": export,
        "mos-build": mos_build,
        "mos-score": mos_score,
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
  import-ganimation --generator G.pth [--critic D.pth] --out OUT.ckpt [--layout auto]
                                               public GANimation weights (official, replicate,
                                               vipermu layouts) as a GANimation checkpoint
  demo [--out demo_out] [--quick]              the main job on built-in synthetic data
  sweep SWEEP.yaml [--count N] [-- OVERRIDES]  run a W&B sweep file locally and offline (grid/random)
  stream [AUDIO] --ckpt CKPT [--stdin]         live AU rows (CSV/JSON lines) as audio arrives, from a
                                               file or raw PCM on stdin, with per-row latency
  export --ckpt CKPT --out DIR                 ONNX files of a checkpoint (CAUSE offline + streaming,
                                               or the GANimation generator) for onnxruntime
  mos-build --audio A [A ...] --face F --ganimation_ckpt G --systems NAME=CKPT|AU_CSV_DIR ... --out DIR
                                               the paper's naturalness test as a static web page kit
  mos-score DIR RATINGS [RATINGS ...]          its MOS with 95% CIs, pairwise tests and bar chart

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
    if command == "stream":
        from cause_pl.cli.stream import audio_as_flag

        rest = audio_as_flag(rest)
    return run_as_command(commands[command], rest, prog=f"cause-pl {command}")


if __name__ == "__main__":
    sys.exit(main())
