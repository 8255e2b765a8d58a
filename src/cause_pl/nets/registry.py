"""The CAUSE nets by the names configs, sweeps and checkpoints use."""

from __future__ import annotations

from typing import Any

from cause_pl.nets.causal import CausalCNN, CausalDCNN
from cause_pl.nets.cause import CauseCNN, CauseDCNN, CauseMLP, CauseNet, CauseRNN

CAUSE_NETS: dict[str, type[CauseNet]] = {
    "mlp": CauseMLP,
    "rnn": CauseRNN,
    "cnn": CauseCNN,
    "dcnn": CauseDCNN,
    "causal_cnn": CausalCNN,
    "causal_dcnn": CausalDCNN,
}
"""The paper's architectures and their streaming variants by the name a config or sweep uses."""


CAUSAL_NETS = ("causal_cnn", "causal_dcnn")
"""The nets whose look-ahead is a parameter."""


def build_cause_net(name: str, **kwargs: Any) -> CauseNet:
    """Build the CAUSE net called ``name`` (case-insensitive) with constructor ``kwargs``.

    ``in_dim``, ``out_dim`` and ``dropout`` apply to every net; ``lookahead`` to the causal ones only.
    """
    key = name.strip().lower()
    if key not in CAUSE_NETS:
        raise ValueError(f"unknown CAUSE net {name!r}; valid names: {', '.join(CAUSE_NETS)}")
    if "lookahead" in kwargs and key not in CAUSAL_NETS:
        raise ValueError(f"lookahead applies to the causal nets ({', '.join(CAUSAL_NETS)}), not to {key!r}")
    return CAUSE_NETS[key](**kwargs)
