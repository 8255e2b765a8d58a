"""The causal CNN and DCNN: how their look-ahead is spread, that the extremes are the paper's nets,
and the masked window that streaming runs them on."""

from __future__ import annotations

import pytest
import torch

from cause_pl.nets.causal import CausalCNN, CausalDCNN
from cause_pl.nets.cause import CNN_DILATIONS, DCNN_DILATIONS, CauseCNN, CauseDCNN, CauseMLP, lookahead_pads
from cause_pl.nets.registry import build_cause_net


def test_lookahead_goes_to_the_first_layers_up_to_their_symmetric_share() -> None:
    assert lookahead_pads(CNN_DILATIONS, 0) == ((2, 0),) * 8
    assert lookahead_pads(CNN_DILATIONS, 3) == ((1, 1),) * 3 + ((2, 0),) * 5
    assert lookahead_pads(CNN_DILATIONS, None) == ((1, 1),) * 8
    assert lookahead_pads(DCNN_DILATIONS, 5) == ((1, 1), (3, 3), (17, 1), (54, 0), (2, 0), (6, 0), (18, 0), (54, 0))
    for dilations in (CNN_DILATIONS, DCNN_DILATIONS):
        for lookahead in range(0, sum(dilations) + 1, 3):
            pads = lookahead_pads(dilations, lookahead)
            assert sum(future for _, future in pads) == lookahead
            assert [past + future for past, future in pads] == [2 * dilation for dilation in dilations]


@pytest.mark.parametrize("lookahead", [-1, 9, 2.0, True])
def test_lookahead_out_of_range_is_refused(lookahead: object) -> None:
    with pytest.raises(ValueError, match=r"lookahead must be an integer in 0\.\.8"):
        CausalCNN(lookahead=lookahead)  # type: ignore[arg-type]


def test_lookahead_is_for_the_causal_nets_only() -> None:
    assert build_cause_net("causal_dcnn", lookahead=7).lookahead == 7
    with pytest.raises(ValueError, match="lookahead applies to the causal nets"):
        build_cause_net("cnn", lookahead=2)


@pytest.mark.parametrize(("causal", "paper", "full"), [(CausalCNN, CauseCNN, 8), (CausalDCNN, CauseDCNN, 80)])
def test_full_lookahead_is_the_paper_net(causal: type, paper: type, full: int) -> None:
    """Same parameters (state-dict keys and shapes); with the paper's look-ahead, the same outputs."""
    torch.manual_seed(0)
    reference = paper().double().eval()
    streaming = causal(lookahead=full).double().eval()
    streaming.load_state_dict(reference.state_dict())
    x = torch.randn(2, 200, 80, dtype=torch.float64)
    shorter = causal(lookahead=full - 1).double().eval()
    shorter.load_state_dict(reference.state_dict())
    with torch.no_grad():
        assert torch.equal(streaming(x), reference(x))
        assert not torch.allclose(shorter(x), reference(x))


@pytest.mark.parametrize(
    "net", [CausalCNN(lookahead=0), CausalCNN(lookahead=2), CauseCNN(), CausalDCNN(lookahead=3), CauseMLP()]
)
def test_a_masked_window_gives_the_whole_sequence_outputs(net: torch.nn.Module) -> None:
    """A window [t - history, t + lookahead] with the frames outside the sequence masked gives output t
    of the whole sequence: at its start, its middle and its end (what a stream computes)."""
    net = net.double().eval()
    frames = 60
    x = torch.randn(1, frames, 80, dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)[0]
        history, lookahead = net.history, net.lookahead
        for t in (0, 1, frames // 2, frames - 2, frames - 1):
            window = torch.randn(1, history + lookahead + 1, 80, dtype=torch.float64) * 5  # junk where masked
            mask = torch.zeros(1, history + lookahead + 1)
            for position in range(history + lookahead + 1):
                source = t - history + position
                if 0 <= source < frames:
                    window[0, position], mask[0, position] = x[0, source], 1.0
            out = net.forward_masked(window, mask)[0, history]
            torch.testing.assert_close(out, whole[t], atol=1e-10, rtol=0)
