"""``cause-pl import-ganimation``: public GANimation weights as a cause-pl GANimation checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from cause_pl.cli.command import UsageError, require_file, require_output


def import_ganimation(
    *,
    generator: Path,
    out: Path,
    critic: Path | None = None,
    layout: Literal["auto", "official", "replicate", "vipermu"] = "auto",
    image_size: int | None = None,
) -> int:
    """Convert a public GANimation generator (and critic) into a checkpoint for animate, ganimation-eval and fit.

    Reads the state dicts of the official code (albertpumarola/GANimation), donydchen/ganimation_replicate or
    vipermu/ganimation with torch.load(weights_only=True) only, maps every key onto our nets (the outputs are
    the same up to float rounding) and prints one line per net: the layout, its parameters, the keys dropped
    and the sizes read from the weights. Without --critic the critic is freshly initialised and marked
    untrained. `fit --ckpt_path OUT` starts a run at epoch 0 from these weights, with the checkpoint's
    hyperparameters (the module's defaults for the training ones).

    Args:
        generator: the source generator's weights (e.g. 30_net_gen.pth, net_epoch_30_id_G.pth, 37-G.ckpt)
        out: the cause-pl GANimation checkpoint to write (.ckpt)
        critic: the source critic's weights; without it the critic is untrained
        layout: the source's layout; auto: detected from the keys
        image_size: training resolution; read from the critic when given, else 128 (all three projects)
    """
    from cause_pl.models.ganimation_import import import_ganimation as convert
    from cause_pl.models.ganimation_import import save_imported

    if image_size is not None and image_size < 1:
        raise UsageError(f"--image_size must be >= 1, got {image_size}")
    require_file(generator, "--generator")
    if critic is not None:
        require_file(critic, "--critic")
    require_output(out, "--out")
    result = convert(generator, critic, layout, image_size)
    save_imported(result, out)
    for net in (result.generator, result.critic):
        print(f"{out}: {net.summary()}", file=sys.stderr)
    return 0
