"""Importing public GANimation weights: stand-ins of the three source layouts (tests/models/ganimation_sources.py)
saved as their projects save them, converted, and our nets' outputs compared with the sources' own."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from cause_pl.models.checkpoints import read_checkpoint
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint
from cause_pl.models.ganimation_import import METADATA_KEY, import_ganimation, save_imported
from cause_pl.models.ganimation_layouts import DROPPED_BIAS, DROPPED_DEBUG, DROPPED_STATS, convert_generator
from tests.models.ganimation_sources import (
    SOURCES,
    save_source,
    source_critic,
    source_generator,
    source_outputs,
)

SMALL = {"cond_dim": 17, "base": 8, "blocks": 2}
CRITIC = {"image_size": 32, "cond_dim": 17, "base": 8, "layers": 4}  # AU head kernel 2


def saved_pair(layout: str, folder: Path, seed: int = 0) -> tuple[nn.Module, nn.Module, Path, Path]:
    generator, critic = source_generator(layout, seed, **SMALL), source_critic(layout, seed, **CRITIC)
    return (
        generator,
        critic,
        save_source(layout, generator, folder / f"{layout}_G.pth"),
        save_source(layout, critic, folder / f"{layout}_D.pth"),
    )


def norms(net: nn.Module) -> int:
    return sum(isinstance(module, nn.InstanceNorm2d) for module in net.modules())


@pytest.mark.parametrize("layout", SOURCES)
def test_imported_nets_compute_what_the_source_nets_compute(layout, tmp_path):
    generator, critic, g_path, d_path = saved_pair(layout, tmp_path)
    result = import_ganimation(g_path, d_path)
    assert (result.generator.layout, result.critic.layout) == (layout, layout)
    assert (result.generator.image_size, result.generator.cond_dim) == (32, 17)
    hparams = result.model.hparams
    assert (hparams.g_base_channels, hparams.g_res_blocks, hparams.d_layers, hparams.d_base_channels) == (8, 2, 4, 8)

    torch.manual_seed(1)
    image, cond = torch.rand(3, 3, 32, 32, dtype=torch.float64) * 2 - 1, torch.rand(3, 17, dtype=torch.float64)
    ours = result.model.double().generator(image, cond)
    with torch.no_grad():
        theirs = source_outputs(layout, generator.double(), image, cond)
        for name in ("image", "attention", "color"):
            assert (getattr(ours, name) - theirs[name]).abs().max().item() < 1e-10, name
        for mine, source in zip(result.model.critic(image), critic.double()(image), strict=True):
            assert mine.shape == source.shape and (mine - source).abs().max().item() < 1e-10


def test_float32_outputs_agree_too(tmp_path):
    generator, _, g_path, _ = saved_pair("replicate", tmp_path)
    image, cond = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 17)
    ours = import_ganimation(g_path, image_size=64).model.generate(image, cond)
    with torch.no_grad():
        theirs = source_outputs("replicate", generator, image, cond)
    assert max((getattr(ours, name) - theirs[name]).abs().max().item() for name in theirs) < 1e-4


def test_dropped_keys_are_counted_by_kind(tmp_path):
    dropped = {}
    for layout in SOURCES:
        generator, _, g_path, _ = saved_pair(layout, tmp_path)
        dropped[layout] = (import_ganimation(g_path, image_size=64).generator.dropped, norms(generator))
    official, count = dropped["official"]
    assert official == {DROPPED_STATS: 2 * count}  # running_mean, running_var of PyTorch 0.3
    replicate, count = dropped["replicate"]
    assert replicate == {DROPPED_BIAS: count}  # one biased conv before each norm
    vipermu, count = dropped["vipermu"]
    assert vipermu[DROPPED_STATS] == 3 * count and vipermu[DROPPED_DEBUG] > 0


def test_the_official_sizes_give_the_official_parameter_counts():
    counts = {}
    for layout in ("official", "replicate"):
        source = source_generator(layout)
        converted = convert_generator(dict(source.state_dict()), layout)
        counts[layout] = sum(p.numel() for p in source.parameters())
        assert converted.sizes == {"cond_dim": 17, "base_channels": 64, "num_down": 2, "num_res_blocks": 6}
    assert counts == {"official": 8_471_296, "replicate": 8_467_584}
    assert sum(p.numel() for p in source_critic("official").parameters()) == 44_860_352


def test_without_a_critic_the_checkpoint_says_the_critic_is_untrained(tmp_path):
    _, _, g_path, _ = saved_pair("vipermu", tmp_path)
    result = import_ganimation(g_path, image_size=64)
    assert not result.critic.trained and "UNTRAINED" in result.critic.summary()
    assert result.model.hparams.d_layers == 6 and result.model.hparams.d_max_channels == 256
    out = save_imported(result, tmp_path / "out" / "vipermu.ckpt")
    checkpoint = read_checkpoint(out)
    assert checkpoint[METADATA_KEY]["critic"]["trained"] is False
    assert checkpoint[METADATA_KEY]["generator"]["layout"] == "vipermu"
    loaded = load_ganimation_checkpoint(out)
    torch.testing.assert_close(loaded.state_dict(), result.model.state_dict(), rtol=0, atol=0)
    assert "vipermu layout" in result.generator.summary() and "image_size 64" in result.generator.summary()


def test_a_state_dict_wrapped_under_state_dict_is_read(tmp_path):
    generator = source_generator("replicate", **SMALL)
    torch.save({"epoch": 30, "state_dict": generator.state_dict()}, tmp_path / "wrapped.pth")
    assert import_ganimation(tmp_path / "wrapped.pth", image_size=64).generator.layout == "replicate"


def test_a_file_that_needs_pickle_execution_is_refused_in_one_line(tmp_path):
    torch.save(source_generator("official", **SMALL), tmp_path / "whole_module.pth")  # pickles the class
    with pytest.raises(ValueError, match="not loadable with weights_only=True") as error:
        import_ganimation(tmp_path / "whole_module.pth")
    message = str(error.value)
    assert "\n" not in message and "whole_module.pth" in message and "OfficialGenerator" in message


def test_an_unrelated_state_dict_is_refused_naming_the_layouts(tmp_path):
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).state_dict(), tmp_path / "mlp.pth")
    with pytest.raises(ValueError, match="not a GANimation generator of a known layout") as error:
        import_ganimation(tmp_path / "mlp.pth")
    message = str(error.value)
    assert "0.weight" in message and "img_reg" in message and "color_top" in message and "im_reg" in message


def test_a_critic_given_as_the_generator_is_named_as_such(tmp_path):
    _, _, _, d_path = saved_pair("replicate", tmp_path)
    with pytest.raises(ValueError, match="it looks like a critic"):
        import_ganimation(d_path)


def test_forcing_the_wrong_layout_fails_clearly(tmp_path):
    _, _, g_path, _ = saved_pair("replicate", tmp_path)
    with pytest.raises(ValueError, match=r"not a generator of the official layout .* those of the replicate layout"):
        import_ganimation(g_path, layout="official")
    _, _, official_g, official_d = saved_pair("official", tmp_path)
    with pytest.raises(ValueError, match="not a critic of the replicate layout"):
        import_ganimation(g_path, official_d, layout="replicate")
    # official and vipermu critics share their keys: either name fits
    assert import_ganimation(official_g, official_d, layout="official").critic.layout == "official"
    vipermu_g = save_source("vipermu", source_generator("vipermu", **SMALL), tmp_path / "v.pth")
    assert import_ganimation(vipermu_g, official_d).critic.layout == "vipermu"


def test_a_missing_or_extra_key_is_named(tmp_path):
    generator = source_generator("official", **SMALL)
    state = dict(generator.state_dict())
    del state["main.4.weight"]
    state["main.2.weight"] = torch.ones(3)  # a ReLU has no weights
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"broken.pth: .*missing 1 \(main.4.weight\); unused 1 \(main.2.weight\)"):
        import_ganimation(tmp_path / "broken.pth")


def test_mismatched_generator_and_critic_are_refused(tmp_path):
    _, _, g_path, _ = saved_pair("official", tmp_path)
    critic = save_source("official", source_critic("official", **{**CRITIC, "cond_dim": 12}), tmp_path / "d12.pth")
    with pytest.raises(ValueError, match="the critic predicts 12 AUs, the generator is conditioned on 17"):
        import_ganimation(g_path, critic)
    _, _, _, d_path = saved_pair("official", tmp_path)
    with pytest.raises(ValueError, match="the critic is for 32 px images, not 64"):
        import_ganimation(g_path, d_path, image_size=64)
    with pytest.raises(ValueError, match="multiple of 64"):
        import_ganimation(g_path, image_size=32)


@pytest.mark.filterwarnings("ignore:The '(train|val)_dataloader' does not have many workers")
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_fit_from_the_imported_checkpoint_is_a_fresh_run_from_its_weights(tmp_path):
    """``fit(ckpt_path=imported)`` == fitting the loaded module without one: epoch 0, fresh Adam, same weights."""
    from tests.models.test_ganimation import SyntheticFaceBatches, loader, trainer

    _, _, g_path, d_path = saved_pair("replicate", tmp_path)
    ckpt = save_imported(import_ganimation(g_path, d_path), tmp_path / "imported.ckpt")
    faces = SyntheticFaceBatches(6)

    started = load_ganimation_checkpoint(ckpt).train()
    trainer(max_epochs=1).fit(started, loader(faces, batch_size=1))
    pl.seed_everything(7, verbose=False)
    fresh = GANimation(**dict(started.hparams))  # other weights, another penalty RNG
    resumed = trainer(max_epochs=1)
    resumed.fit(fresh, loader(faces, batch_size=1), ckpt_path=ckpt)
    assert resumed.global_step == 6 + 1  # 6 critic steps and one generator step (critic_steps 5)
    torch.testing.assert_close(fresh.state_dict(), started.state_dict(), rtol=0, atol=0)
