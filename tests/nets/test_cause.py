"""The CAUSE nets (the paper's four and the causal variants): shapes, sizes, context they read, and that they learn."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from cause_pl.au import NUM_AUS
from cause_pl.nets.cause import CauseCNN, CauseDCNN, CauseMLP, CauseRNN
from cause_pl.nets.registry import CAUSE_NETS, build_cause_net

NAMES = sorted(CAUSE_NETS)
BOUNDED = [name for name in NAMES if CAUSE_NETS[name]().receptive_field is not None]
DESIGN_PARAM_COUNTS = {
    "mlp": 44_000,
    "rnn": 410_000,
    "cnn": 208_000,
    "dcnn": 208_000,
    "causal_cnn": 208_000,
    "causal_dcnn": 208_000,
}
"""Reference sizes from docs/design.md, "CAUSE nets" (weight norm's gains included)."""


def eval_net(name: str, **kwargs: int | float) -> nn.Module:
    """A seeded net in eval mode, in float64 so that 'unchanged' can mean bit-for-bit."""
    torch.manual_seed(0)
    return build_cause_net(name, **kwargs).double().eval()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("frames", [1, 2, 7, 128])
def test_maps_every_frame_to_an_au_vector(name: str, batch: int, frames: int) -> None:
    net = build_cause_net(name).eval()
    with torch.no_grad():
        out = net(torch.randn(batch, frames, 80))
    assert out.shape == (batch, frames, NUM_AUS)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_input_and_output_widths_are_parameters(name: str) -> None:
    net = build_cause_net(name, in_dim=40, out_dim=5).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 9, 40)).shape == (2, 9, 5)
    with pytest.raises(ValueError, match=r"\(batch, frames>=1, 40\).*\(2, 9, 80\)"):
        net(torch.randn(2, 9, 80))
    with pytest.raises(ValueError, match="frames>=1"):
        net(torch.randn(2, 0, 40))
    with pytest.raises(ValueError, match="got \\(9, 40\\)"):
        net(torch.randn(9, 40))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_design(name: str) -> None:
    count = sum(parameter.numel() for parameter in build_cause_net(name).parameters())
    assert count == pytest.approx(DESIGN_PARAM_COUNTS[name], rel=0.02)


@pytest.mark.parametrize("net_class", [CauseMLP, CauseCNN, CauseDCNN])
def test_every_weight_is_weight_normalised(net_class: type[nn.Module]) -> None:
    layers = [m for m in net_class().modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    assert len(layers) == 10  # MLP: ten linear layers; CNN/DCNN: linear, eight convs, linear
    assert all(parametrize.is_parametrized(layer, "weight") for layer in layers)


def test_rnn_weight_normalises_its_linear_layers_only() -> None:
    net = CauseRNN()
    assert parametrize.is_parametrized(net.embed, "weight")
    assert parametrize.is_parametrized(net.head, "weight")
    assert not parametrize.is_parametrized(net.lstm)
    assert (net.lstm.num_layers, net.lstm.hidden_size, net.lstm.bidirectional) == (4, 64, True)


def test_registry_builds_by_name_and_lists_valid_names() -> None:
    assert set(CAUSE_NETS) == {"mlp", "rnn", "cnn", "dcnn", "causal_cnn", "causal_dcnn"}
    for name, net_class in CAUSE_NETS.items():
        assert type(build_cause_net(name)) is net_class
    assert type(build_cause_net(" DCNN ")) is CauseDCNN
    assert build_cause_net("cnn", out_dim=3).out_dim == 3
    with pytest.raises(ValueError, match=r"'tcn'.*mlp, rnn, cnn, dcnn"):
        build_cause_net("tcn")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"out_dim": 0}, "out_dim"),
        ({"in_dim": 0}, "in_dim"),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_constructor_arguments(name: str, kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build_cause_net(name, **kwargs)


def test_declared_context() -> None:
    """(history, lookahead) frames; the receptive field is the larger of the two."""
    dcnn_side = 2 * (1 + 3 + 9 + 27)
    assert {name: (CAUSE_NETS[name]().history, CAUSE_NETS[name]().lookahead) for name in NAMES} == {
        "mlp": (0, 0),
        "rnn": (None, None),
        "cnn": (8, 8),
        "dcnn": (dcnn_side, dcnn_side),
        "causal_cnn": (14, 2),
        "causal_dcnn": (2 * dcnn_side - 2, 2),
    }
    assert {name: CAUSE_NETS[name]().receptive_field for name in NAMES} == {
        "mlp": 0,
        "rnn": None,
        "cnn": 8,
        "dcnn": dcnn_side,
        "causal_cnn": 14,
        "causal_dcnn": 2 * dcnn_side - 2,
    }


@pytest.mark.parametrize("name", BOUNDED)
def test_perturbing_one_frame_changes_exactly_its_receptive_field(name: str) -> None:
    """Output t reads inputs t - history .. t + lookahead: input hit moves outputs hit - lookahead .. hit + history."""
    net = eval_net(name)
    reach = net.receptive_field
    frames, hit = 2 * reach + 31, reach + 12
    x = torch.randn(1, frames, 80, dtype=torch.float64)
    perturbed = x.clone()
    perturbed[0, hit] += 3.0
    with torch.no_grad():
        changed = (net(perturbed) - net(x)).abs().amax(dim=-1)[0] > 0
    expected = torch.zeros(frames, dtype=torch.bool)
    expected[hit - net.lookahead : hit + net.history + 1] = True
    assert torch.equal(changed, expected)


def test_rnn_context_is_unbounded() -> None:
    net = eval_net("rnn")
    x = torch.randn(1, 60, 80, dtype=torch.float64)
    perturbed = x.clone()
    perturbed[0, 0] += 3.0
    with torch.no_grad():
        changed = (net(perturbed) - net(x)).abs().amax(dim=-1)[0] > 0
    assert changed.all()


def test_mlp_is_frame_independent() -> None:
    net = eval_net("mlp")
    x = torch.randn(2, 23, 80, dtype=torch.float64)
    order = torch.randperm(23)
    with torch.no_grad():
        torch.testing.assert_close(net(x[:, order]), net(x)[:, order])


@pytest.mark.parametrize("filler", ["zeros", "noise"])
@pytest.mark.parametrize("name", BOUNDED)
def test_outputs_beyond_the_receptive_field_ignore_the_surroundings(name: str, filler: str) -> None:
    """What chunked inference relies on: a chunk with `receptive_field` frames of context on each
    side yields the full-sequence output on its interior, whatever lies further away."""
    net = eval_net(name)
    reach = net.receptive_field
    frames, far = 2 * reach + 17, 2 * reach + 5
    x = torch.randn(1, frames, 80, dtype=torch.float64)
    make = torch.zeros if filler == "zeros" else torch.randn
    embedded = torch.cat([make(1, far, 80, dtype=torch.float64), x, make(1, far + 3, 80, dtype=torch.float64)], dim=1)
    with torch.no_grad():
        alone, inside = net(x), net(embedded)[:, far : far + frames]
    torch.testing.assert_close(inside[:, reach : frames - reach], alone[:, reach : frames - reach])


@pytest.mark.parametrize("name", ["mlp", "cnn", "dcnn"])
def test_dropout_is_active_in_training_only(name: str) -> None:
    x = torch.randn(2, 11, 80)
    noisy = build_cause_net(name, dropout=0.1).train()
    assert not torch.equal(noisy(x), noisy(x))
    noisy.eval()
    assert torch.equal(noisy(x), noisy(x))
    clean = build_cause_net(name, dropout=0.0).train()
    assert torch.equal(clean(x), clean(x))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    net = build_cause_net(name).train()
    net(torch.randn(2, 13, 80)).square().mean().backward()
    for parameter_name, parameter in net.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("name", NAMES)
def test_fits_a_small_fixed_batch(name: str) -> None:
    """100 Adam steps halve the L1 loss on targets that depend (non-linearly) on each input frame,
    and beat the best input-independent prediction (the per-AU median) by more than half."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 80)
    direction, spread = torch.randn(80, 1) / 80**0.5, torch.randn(1, NUM_AUS)
    target = torch.tanh(2.0 * x @ direction) @ spread
    constant_loss = (target - target.flatten(0, 1).median(dim=0).values).abs().mean().item()
    net = build_cause_net(name).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    initial_loss = (net(x) - target).abs().mean().item()
    for _ in range(100):
        loss = (net(x) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final_loss = (net.eval()(x) - target).abs().mean().item()
    assert final_loss < 0.5 * initial_loss
    assert final_loss < 0.5 * constant_loss


@pytest.mark.parametrize("name", NAMES)
def test_padded_batch_with_lengths_equals_each_sequence_alone(name):
    torch.manual_seed(0)
    net = build_cause_net(name).double().eval()
    lengths = torch.tensor([37, 120, 5])
    sequences = [torch.randn(int(length), 80, dtype=torch.float64) for length in lengths]
    batch = torch.full((3, 120, 80), 7.0, dtype=torch.float64)  # padding that would leak if read
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = sequence
    with torch.no_grad():
        padded = net(batch, lengths)
        for row, sequence in enumerate(sequences):
            alone = net(sequence[None])[0]
            assert torch.allclose(padded[row, : len(sequence)], alone, atol=1e-10), (name, row)
