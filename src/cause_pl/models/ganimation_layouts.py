"""State-dict layouts of three public GANimation implementations, mapped key by key onto our nets.

The official code (albertpumarola/GANimation), donydchen/ganimation_replicate and vipermu/ganimation
share the architecture of :mod:`cause_pl.nets.ganimation` but name, bias and normalise its layers
differently (*docs/design.md*, section 5). Each function here works on a plain state dict (the
``module.`` prefix of ``DataParallel`` already stripped) and returns our net's keys, without the
``generator.`` / ``critic.`` prefix of the LightningModule. Every source key is used or dropped for
a stated reason, exactly once; anything else is a ValueError naming the keys.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import torch

LAYOUTS = ("official", "replicate", "vipermu")
RGB_CHANNELS = 3
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
DEBUG_ALIAS = re.compile(r"^debug\d*\.")
"""vipermu's generator holds ``debug1`` .. ``debug4`` sequences aliasing its own layers."""
DROPPED_STATS = "InstanceNorm running statistics"
DROPPED_DEBUG = "debug aliases"
DROPPED_BIAS = "conv biases cancelled by InstanceNorm"
MODULE_PREFIX = "module."


@dataclass(frozen=True)
class GeneratorLayout:
    """Where one implementation keeps the generator's layers and how it builds them."""

    trunk: str
    block: str
    color_head: str
    attention_head: str
    conv_bias: bool
    affine_norm: bool


@dataclass(frozen=True)
class CriticLayout:
    """Where one implementation keeps the critic's layers."""

    trunk: str
    realness_head: str
    au_head: str


GENERATOR_LAYOUTS = {
    "official": GeneratorLayout("main", "main", "img_reg", "attetion_reg", conv_bias=False, affine_norm=True),
    "replicate": GeneratorLayout("model", "conv_block", "color_top", "au_top", conv_bias=True, affine_norm=False),
    "vipermu": GeneratorLayout("main", "main", "im_reg", "im_att", conv_bias=False, affine_norm=True),
}
CRITIC_LAYOUTS = {
    "official": CriticLayout("main", "conv1", "conv2"),
    "replicate": CriticLayout("model", "dis_top", "aus_top"),
    "vipermu": CriticLayout("main", "conv1", "conv2"),
}


@dataclass
class Converted:
    """A source net's weights under our key names, and what was dropped, counted by kind."""

    layout: str
    state: dict[str, torch.Tensor]
    dropped: Counter[str] = field(default_factory=Counter)
    sizes: dict[str, int] = field(default_factory=dict)


Plan = dict[str, str | torch.Tensor]
"""Our key -> the source key it comes from, or the constant tensor that fills it."""


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without ``DataParallel``'s ``module.`` prefix; ValueError if two keys then collide."""
    stripped = {key.removeprefix(MODULE_PREFIX): value for key, value in state.items()}
    if len(stripped) != len(state):
        raise ValueError("keys with and without the 'module.' prefix name the same layer")
    return stripped


def drop_unused(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Counter[str]]:
    """``state`` without InstanceNorm running statistics (never used: every source normalises each image
    by its own statistics at inference) and vipermu's ``debug*`` aliases; the dropped keys counted."""
    kept: dict[str, torch.Tensor] = {}
    dropped: Counter[str] = Counter()
    for key, value in state.items():
        if DEBUG_ALIAS.match(key):
            dropped[DROPPED_DEBUG] += 1
        elif key.rsplit(".", 1)[-1] in RUNNING_STATS:
            dropped[DROPPED_STATS] += 1
        else:
            kept[key] = value
    return kept, dropped


def detect_generator_layout(keys: set[str]) -> str | None:
    """The generator layout whose two heads are among ``keys``, or None."""
    for name, layout in GENERATOR_LAYOUTS.items():
        if {f"{layout.color_head}.0.weight", f"{layout.attention_head}.0.weight"} <= keys:
            return name
    return None


def detect_critic_layout(keys: set[str]) -> str | None:
    """The critic layout whose two heads are among ``keys`` (official and vipermu share one), or None."""
    for name, layout in CRITIC_LAYOUTS.items():
        if {f"{layout.realness_head}.weight", f"{layout.au_head}.weight"} <= keys:
            return name
    return None


def expected_generator_keys(layout: str) -> str:
    spec = GENERATOR_LAYOUTS[layout]
    return f"heads {spec.color_head}.0 / {spec.attention_head}.0 and trunk {spec.trunk}.N"


def expected_critic_keys(layout: str) -> str:
    spec = CRITIC_LAYOUTS[layout]
    return f"heads {spec.realness_head} / {spec.au_head} and trunk {spec.trunk}.N"


def convert_generator(state: dict[str, torch.Tensor], layout: str) -> Converted:
    """The generator ``state`` of ``layout`` as a state dict of :class:`GANimationGenerator`."""
    kept, dropped = drop_unused(state)
    spec = GENERATOR_LAYOUTS[layout]
    convs = _conv_indices(kept, spec.trunk)
    blocks = sorted({int(m.group(1)) for key in kept if (m := _block_key(spec, key))})
    if len(convs) % 2 == 0:
        raise ValueError(
            f"{layout} generator: {len(convs)} top-level convs under '{spec.trunk}.'; expected 2 * levels + 1"
        )
    num_down = (len(convs) - 1) // 2
    plan: Plan = {}
    biases: list[str] = []
    for ours, conv, norm, transposed in _generator_stages(spec, num_down, len(blocks)):
        _plan_conv_norm(plan, biases, kept, spec, (ours, conv, norm), transposed)
    plan["color_head.0.weight"] = f"{spec.color_head}.0.weight"
    plan["attention_head.0.weight"] = f"{spec.attention_head}.0.weight"
    # A per-channel conv bias right before an InstanceNorm is removed by the norm's mean subtraction (and
    # leaves the variance unchanged), so replicate's trunk biases have no effect: dropping them is exact.
    dropped[DROPPED_BIAS] += len(biases)
    converted = Converted(layout, _apply(plan, kept, used_elsewhere=set(biases), what=f"{layout} generator"), dropped)
    first = kept[f"{spec.trunk}.0.weight"]
    converted.sizes = {
        "cond_dim": first.shape[1] - RGB_CHANNELS,
        "base_channels": first.shape[0],
        "num_down": num_down,
        "num_res_blocks": len(blocks),
    }
    return converted


def convert_critic(state: dict[str, torch.Tensor], layout: str) -> Converted:
    """The critic ``state`` of ``layout`` as a state dict of :class:`GANimationCritic`."""
    kept, dropped = drop_unused(state)
    spec = CRITIC_LAYOUTS[layout]
    convs = _conv_indices(kept, spec.trunk)
    if not convs:
        raise ValueError(f"{layout} critic: no convs under '{spec.trunk}.'")
    plan: Plan = {}
    for level in range(len(convs)):
        for name in ("weight", "bias"):
            plan[f"trunk.{2 * level}.{name}"] = f"{spec.trunk}.{2 * level}.{name}"
    plan["realness_head.weight"] = f"{spec.realness_head}.weight"
    plan["au_head.weight"] = f"{spec.au_head}.weight"
    converted = Converted(layout, _apply(plan, kept, used_elsewhere=set(), what=f"{layout} critic"), dropped)
    au_head = kept[f"{spec.au_head}.weight"]
    if au_head.dim() != 4 or au_head.shape[-1] != au_head.shape[-2]:
        raise ValueError(
            f"{layout} critic: AU head {spec.au_head}.weight of shape {tuple(au_head.shape)} is not a square conv"
        )
    widths = [kept[f"{spec.trunk}.{index}.weight"].shape[0] for index in convs]
    converted.sizes = {
        "image_size": au_head.shape[-1] * 2 ** len(convs),  # the AU head spans the final map: image / 2**layers
        "cond_dim": au_head.shape[0],
        "base_channels": widths[0],
        "num_layers": len(convs),
        "max_channels": max(widths),
    }
    return converted


def _conv_indices(state: dict[str, torch.Tensor], trunk: str) -> list[int]:
    """Indices N of the 4-D ``{trunk}.N.weight`` tensors (convs, not norms), sorted."""
    pattern = re.compile(rf"^{re.escape(trunk)}\.(\d+)\.weight$")
    return sorted(int(m.group(1)) for key, value in state.items() if (m := pattern.match(key)) and value.dim() == 4)


def _block_key(spec: GeneratorLayout, key: str) -> re.Match[str] | None:
    return re.match(rf"^{re.escape(spec.trunk)}\.(\d+)\.{re.escape(spec.block)}\.0\.weight$", key)


def _generator_stages(spec: GeneratorLayout, num_down: int, num_blocks: int) -> list[tuple[str, str, str, bool]]:
    """(our conv prefix, source conv prefix, source norm prefix, transposed) per trunk conv, in order.

    The source trunk is one flat sequence: (conv, norm, ReLU) per level, residual blocks whose bodies are
    (conv, norm, ReLU, conv, norm), then (transposed conv, norm, ReLU) per level.
    """
    stages: list[tuple[str, str, str, bool]] = []
    for level in range(num_down + 1):
        stages.append((f"trunk.{level}.0", f"{spec.trunk}.{3 * level}", f"{spec.trunk}.{3 * level + 1}", False))
    first_block = 3 * (num_down + 1)
    for block in range(num_blocks):
        body, ours = f"{spec.trunk}.{first_block + block}.{spec.block}", f"trunk.{num_down + 1 + block}.body"
        stages.append((f"{ours}.0.0", f"{body}.0", f"{body}.1", False))
        stages.append((f"{ours}.1", f"{body}.3", f"{body}.4", False))
    first_up = first_block + num_blocks
    for level in range(num_down):
        ours = f"trunk.{num_down + 1 + num_blocks + level}.0"
        stages.append((ours, f"{spec.trunk}.{first_up + 3 * level}", f"{spec.trunk}.{first_up + 3 * level + 1}", True))
    return stages


def _plan_conv_norm(
    plan: Plan,
    biases: list[str],
    state: dict[str, torch.Tensor],
    spec: GeneratorLayout,
    names: tuple[str, str, str],
    transposed: bool,
) -> None:
    """Plan one trunk conv and the InstanceNorm after it (ours: ``X.weight`` conv, next index the norm)."""
    ours, conv, norm = names
    our_norm = _next_index(ours)
    plan[f"{ours}.weight"] = f"{conv}.weight"
    if spec.conv_bias:
        biases.append(f"{conv}.bias")
    if spec.affine_norm:
        plan[f"{our_norm}.weight"] = f"{norm}.weight"
        plan[f"{our_norm}.bias"] = f"{norm}.bias"
        return
    weight = state.get(f"{conv}.weight")
    if weight is None:
        return  # reported as missing by _apply
    channels = weight.shape[1] if transposed else weight.shape[0]  # ConvTranspose2d weights are [in, out, k, k]
    plan[f"{our_norm}.weight"] = torch.ones(channels)  # a non-affine norm is an affine one with weight 1, bias 0
    plan[f"{our_norm}.bias"] = torch.zeros(channels)


def _next_index(prefix: str) -> str:
    """``trunk.3.body.0.0`` -> ``trunk.3.body.0.1``: the module after ``prefix`` in its Sequential."""
    head, _, index = prefix.rpartition(".")
    return f"{head}.{int(index) + 1}"


def _apply(plan: Plan, state: dict[str, torch.Tensor], used_elsewhere: set[str], what: str) -> dict[str, torch.Tensor]:
    """Our state dict from ``plan``; ValueError unless every source key is used exactly once."""
    sources = [source for source in plan.values() if isinstance(source, str)] + sorted(used_elsewhere)
    missing = sorted({key for key in sources if key not in state})
    unused = sorted(state.keys() - set(sources))
    twice = sorted(key for key, count in Counter(sources).items() if count > 1)
    problems = [
        f"{label} {_few(keys)}"
        for label, keys in (("missing", missing), ("unused", unused), ("used twice", twice))
        if keys
    ]
    if problems:
        raise ValueError(f"the keys do not fit the {what} layout: {'; '.join(problems)}")
    return {
        ours: (state[source] if isinstance(source, str) else source).detach().to(torch.float32).clone()
        for ours, source in plan.items()
    }


def _few(keys: list[str], count: int = 4) -> str:
    shown = ", ".join(keys[:count])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > count else ''})"
