"""The four CAUSE nets of the paper (section 3.3): mel-spectrogram frames -> per-frame AU intensities.

Every net (these, and the streaming variants of :mod:`cause_pl.nets.causal`) maps
``(batch, frames, in_dim)`` to ``(batch, frames, out_dim)`` for any number of frames, takes
optional ``lengths`` (batch,) so that a padded batch gives every sequence exactly the output it
gets alone (padding never leaks into real frames), and says how many frames of context it reads
before and after a frame (``history``, ``lookahead``) so that long inputs can be processed in
overlapping chunks and streams in windows. Layer widths are the paper's; ``in_dim`` (80 mel
bands), ``out_dim`` (17 AUs) and ``dropout`` (0.1) are parameters so the same nets can regress
other per-frame targets.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from cause_pl.au import NUM_AUS


def length_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch, frames) bool: True for the first ``lengths[i]`` frames of sequence ``i``."""
    return torch.arange(frames, device=lengths.device) < lengths[:, None]


MEL_BANDS = 80
"""Default input width: the mel bands of the project's front end."""
DEFAULT_DROPOUT = 0.1
LEAKY_SLOPE = 0.1

MLP_WIDTHS = (128, 128, 64, 64, 32, 32, 16, 16, 8)
"""Output widths of the MLP's first nine layers; the tenth emits ``out_dim``."""
EMBED_WIDTH = 128
"""Width of the first linear layer of the RNN, CNN and DCNN."""
LSTM_HIDDEN = 64
LSTM_LAYERS = 4
CONV_WIDTHS = (128, 64, 64, 32, 32, 16, 16, 8)
"""Channels after each gated convolution (each conv emits twice as many; GLU halves them)."""
CONV_KERNEL = 3
CNN_DILATIONS = (1,) * len(CONV_WIDTHS)
DCNN_DILATIONS = (1, 3, 9, 27, 1, 3, 9, 27)


def _check_sizes(net: str, in_dim: int, out_dim: int, dropout: float) -> None:
    """Reject nonsensical constructor arguments with a message that names them."""
    if in_dim < 1 or out_dim < 1:
        raise ValueError(f"{net}: in_dim and out_dim must be >= 1, got in_dim={in_dim}, out_dim={out_dim}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{net}: dropout must be in [0, 1), got {dropout}")


class CauseNet(nn.Module):
    """Common contract of the CAUSE nets: input checking and the receptive field.

    ``history`` and ``lookahead`` are the numbers of input frames before and after a frame that its
    output can depend on (``None``: unbounded, e.g. a bidirectional RNN); ``receptive_field`` is the
    larger of the two, the context a chunk needs on EACH side to be computed exactly.
    """

    history: int | None
    lookahead: int | None

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim

    @property
    def receptive_field(self) -> int | None:
        """Frames of context needed on each side of a chunk (``None``: unbounded)."""
        if self.history is None or self.lookahead is None:
            return None
        return max(self.history, self.lookahead)

    def forward_masked(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """``forward`` where the frames with ``frame_mask`` (batch, frames) 0 lie outside the signal.

        Their outputs are meaningless, and the other frames' outputs are what they are when the
        signal ends at those frames (a window of a stream gives the outputs of the whole stream).
        Frame-independent nets ignore the mask; nets with context override this.
        """
        if self.history != 0 or self.lookahead != 0:
            raise NotImplementedError(f"{type(self).__name__} cannot run on a masked window")
        return self(x)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.in_dim or x.shape[1] < 1:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, frames>=1, {self.in_dim}), got {tuple(x.shape)}"
            )


class CauseMLP(CauseNet):
    """Frame-independent MLP: ten weight-normalised linear layers (paper widths, then ``out_dim``).

    The paper says each layer is "followed by a dropout layer ... and a LReLU ... except for the
    first and last layers". We read it literally: layers 2-9 are each followed by dropout and
    LeakyReLU(0.1); the first layer is a plain linear input projection (as the first linear layer
    of the RNN/CNN/DCNN is) and the last is the linear output layer. Layers 1 and 2 therefore
    compose linearly; that is what the text specifies, and it changes no parameter count.
    """

    def __init__(self, in_dim: int = MEL_BANDS, out_dim: int = NUM_AUS, dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__(in_dim, out_dim)
        _check_sizes("CauseMLP", in_dim, out_dim, dropout)
        self.history = self.lookahead = 0
        widths = (in_dim, *MLP_WIDTHS, out_dim)
        last = len(widths) - 2
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(pairwise(widths)):
            layers.append(weight_norm(nn.Linear(width_in, width_out)))
            if 0 < index < last:
                layers += [nn.Dropout(dropout), nn.LeakyReLU(LEAKY_SLOPE)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``(batch, frames, in_dim)`` to ``(batch, frames, out_dim)``, frame by frame."""
        self._check_input(x)
        return self.layers(x)


class CauseRNN(CauseNet):
    """Linear(128) -> 4-layer BiLSTM(64 hidden per direction) -> Linear(``out_dim``).

    Weight norm on the two linear layers only, as in the paper. The paper names no dropout for
    this net, so ``dropout`` defaults to 0; when set it is the LSTM's between-layer dropout.
    """

    def __init__(self, in_dim: int = MEL_BANDS, out_dim: int = NUM_AUS, dropout: float = 0.0) -> None:
        super().__init__(in_dim, out_dim)
        _check_sizes("CauseRNN", in_dim, out_dim, dropout)
        self.history = self.lookahead = None
        self.embed = weight_norm(nn.Linear(in_dim, EMBED_WIDTH))
        self.lstm = nn.LSTM(
            EMBED_WIDTH, LSTM_HIDDEN, num_layers=LSTM_LAYERS, batch_first=True, bidirectional=True, dropout=dropout
        )
        self.head = weight_norm(nn.Linear(2 * LSTM_HIDDEN, out_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``(batch, frames, in_dim)`` to ``(batch, frames, out_dim)`` reading the whole sequence.

        With ``lengths`` the backward direction starts at each sequence's own last frame (packed).
        """
        self._check_input(x)
        embedded = self.embed(x)
        if lengths is None:
            hidden, _ = self.lstm(embedded)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                embedded, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False
            )
            hidden, _ = nn.utils.rnn.pad_packed_sequence(
                self.lstm(packed)[0], batch_first=True, total_length=x.shape[1]
            )
        return self.head(hidden)


def lookahead_pads(dilations: tuple[int, ...], lookahead: int | None) -> tuple[tuple[int, int], ...]:
    """(past, future) zero padding of each gated convolution for a stack that reads ``lookahead`` future frames.

    ``None`` pads every convolution symmetrically (the paper's nets: lookahead = the sum of the
    dilations). Otherwise the look-ahead is given to the first convolutions, at most their
    symmetric share (one dilation) each, and the rest of each kernel reads the past: 0 makes a
    causal stack, and the paper's own lookahead gives back the paper's padding exactly.
    """
    symmetric = sum(dilation * (CONV_KERNEL // 2) for dilation in dilations)
    if lookahead is None:
        lookahead = symmetric
    if isinstance(lookahead, bool) or not isinstance(lookahead, int) or not 0 <= lookahead <= symmetric:
        raise ValueError(f"lookahead must be an integer in 0..{symmetric} frames, got {lookahead!r}")
    pads = []
    for dilation in dilations:
        future = min(dilation * (CONV_KERNEL // 2), lookahead)
        lookahead -= future
        pads.append((dilation * (CONV_KERNEL - 1) - future, future))
    return tuple(pads)


class GatedConvNet(CauseNet):
    """Linear(128) -> eight gated 1-D convolutions -> Linear(``out_dim``); base of the CNN and DCNN nets.

    Each convolution (kernel 3) is zero-padded by :func:`lookahead_pads` so that length is kept,
    emits twice the listed channels and is followed by dropout and a GLU that halves them. Weight
    norm on every weight. Convolutions run channels-first: one transpose in, one out.
    """

    def __init__(
        self, dilations: tuple[int, ...], in_dim: int, out_dim: int, dropout: float, lookahead: int | None = None
    ) -> None:
        super().__init__(in_dim, out_dim)
        _check_sizes(type(self).__name__, in_dim, out_dim, dropout)
        if len(dilations) != len(CONV_WIDTHS) or min(dilations) < 1:
            raise ValueError(f"dilations must be {len(CONV_WIDTHS)} positive integers, got {dilations}")
        self.pads = lookahead_pads(dilations, lookahead)
        self.history = sum(past for past, _ in self.pads)
        self.lookahead = sum(future for _, future in self.pads)
        self.embed = weight_norm(nn.Linear(in_dim, EMBED_WIDTH))
        layers: list[nn.Module] = []
        channels_in = EMBED_WIDTH
        for channels_out, dilation in zip(CONV_WIDTHS, dilations, strict=True):
            conv = nn.Conv1d(channels_in, 2 * channels_out, CONV_KERNEL, dilation=dilation)
            layers += [weight_norm(conv), nn.Dropout(dropout), nn.GLU(dim=1)]
            channels_in = channels_out
        self.convs = nn.Sequential(*layers)
        self.head = weight_norm(nn.Linear(channels_in, out_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``(batch, frames, in_dim)`` to ``(batch, frames, out_dim)``.

        With ``lengths``, hidden frames past each sequence's end are zeroed before every
        convolution, exactly as the convolution's own zero padding would be.
        """
        self._check_input(x)
        return self._run(x, None if lengths is None else length_mask(lengths, x.shape[1]))

    def forward_masked(self, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """``forward`` with the hidden frames where ``frame_mask`` is 0 zeroed before every convolution."""
        self._check_input(x)
        return self._run(x, frame_mask)

    def _run(self, x: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        hidden = self.embed(x).transpose(1, 2)
        mask = None if frame_mask is None else frame_mask[:, None, :].to(hidden.dtype)
        pads = iter(self.pads)
        for layer in self.convs:
            if isinstance(layer, nn.Conv1d):
                hidden = nn.functional.pad(hidden if mask is None else hidden * mask, next(pads))
            hidden = layer(hidden)
        return self.head(hidden.transpose(1, 2))


class CauseCNN(GatedConvNet):
    """The paper's CNN: undilated gated convolutions; sees 8 frames on each side."""

    def __init__(self, in_dim: int = MEL_BANDS, out_dim: int = NUM_AUS, dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__(CNN_DILATIONS, in_dim, out_dim, dropout)


class CauseDCNN(GatedConvNet):
    """The paper's DCNN: dilations 1, 3, 9, 27 twice; sees 80 frames on each side (3.2 s at 25 fps)."""

    def __init__(self, in_dim: int = MEL_BANDS, out_dim: int = NUM_AUS, dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__(DCNN_DILATIONS, in_dim, out_dim, dropout)
