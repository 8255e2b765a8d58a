"""Streaming variants of the paper's CNN and DCNN: the same layers, padded on the past side.

A causal net's output for a frame reads ``history`` past frames and only ``lookahead`` future
ones, so a stream can emit each frame ``lookahead`` frames (40 ms each at 25 fps) after its audio
instead of the paper CNN's 8 or the DCNN's 80. Trained with the same configs (``arch: causal_cnn``,
``lookahead: N``); how the look-ahead is spread over the layers is :func:`lookahead_pads`.
"""

from __future__ import annotations

from cause_pl.au import NUM_AUS
from cause_pl.nets.cause import CNN_DILATIONS, DCNN_DILATIONS, DEFAULT_DROPOUT, MEL_BANDS, GatedConvNet

DEFAULT_LOOKAHEAD = 2
"""Future frames of the causal nets unless configured: 80 ms at 25 fps."""


class CausalCNN(GatedConvNet):
    """The CNN's layers padded on the past side, reading ``lookahead`` future frames (0..8): streams with low latency.

    It has the CNN's parameters (the same state-dict keys); ``lookahead=8`` is the paper's CNN.
    """

    def __init__(
        self,
        in_dim: int = MEL_BANDS,
        out_dim: int = NUM_AUS,
        dropout: float = DEFAULT_DROPOUT,
        lookahead: int = DEFAULT_LOOKAHEAD,
    ) -> None:
        super().__init__(CNN_DILATIONS, in_dim, out_dim, dropout, lookahead)


class CausalDCNN(GatedConvNet):
    """The DCNN's layers padded on the past side, reading ``lookahead`` future frames (0..80).

    It has the DCNN's parameters; ``lookahead=80`` is the paper's DCNN.
    """

    def __init__(
        self,
        in_dim: int = MEL_BANDS,
        out_dim: int = NUM_AUS,
        dropout: float = DEFAULT_DROPOUT,
        lookahead: int = DEFAULT_LOOKAHEAD,
    ) -> None:
        super().__init__(DCNN_DILATIONS, in_dim, out_dim, dropout, lookahead)
