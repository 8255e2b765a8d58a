"""Band-limited resampling of a signal that arrives in pieces, equal to resampling it whole.

``torchaudio.functional.resample`` is a strided convolution: with both rates divided by their
greatest common divisor (``orig`` in, ``new`` out), output block ``b`` (samples ``b*new ..
b*new+new-1``) reads input samples ``[b*orig - width, (b+1)*orig + width)`` of the zero-padded
signal, where ``width`` is the sinc kernel's half-length. :class:`StreamResampler` therefore resamples
a slice of the buffered input with ``margin_blocks`` blocks of extra input on each side and keeps only
the blocks whose whole window lay inside the slice (or at the signal's true start): the result is the
whole-signal result up to float round-off, while memory holds one piece plus the margins.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor

from cause_pl.checks import positive_int

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99
"""torchaudio's defaults for ``resample``, the kernel this module reproduces piece by piece."""


class StreamResampler:
    """Resample a mono float signal fed with :meth:`push` in pieces of any size; :meth:`flush` at the end."""

    def __init__(self, orig_freq: int, new_freq: int) -> None:
        self.orig_freq = positive_int("orig_freq", orig_freq)
        self.new_freq = positive_int("new_freq", new_freq)
        divisor = math.gcd(self.orig_freq, self.new_freq)
        self.orig, self.new = self.orig_freq // divisor, self.new_freq // divisor
        width = math.ceil(LOWPASS_FILTER_WIDTH * self.orig / (min(self.orig, self.new) * ROLLOFF))
        self.width = width
        self.margin_blocks = math.ceil(width / self.orig) + 1
        self._buffer = torch.zeros(0)
        self._buffer_start = 0  # input index of _buffer[0], always a multiple of orig
        self._next_block = 0  # first output block not yet returned

    @property
    def identity(self) -> bool:
        """Equal rates: samples pass through unchanged, as ``torchaudio`` does."""
        return self.orig == self.new

    def push(self, samples: Tensor) -> Tensor:
        """Append input samples; return the output samples that are now final (possibly none)."""
        if self.identity:
            return samples
        self._buffer = torch.cat([self._buffer, samples.to(torch.float32)])
        received = self._buffer_start + self._buffer.shape[0]
        end_block = (received - self.width) // self.orig  # blocks below it have all their input
        if end_block <= self._next_block:
            return self._buffer.new_zeros(0)
        ready = self._unreturned_output()[: (end_block - self._next_block) * self.new]
        self._next_block = end_block
        keep_from = max(0, end_block - self.margin_blocks) * self.orig
        self._buffer = self._buffer[keep_from - self._buffer_start :].clone()
        self._buffer_start = keep_from
        return ready

    def flush(self) -> Tensor:
        """The remaining output, treating the input received so far as the whole signal."""
        if self.identity or self._buffer.shape[0] == 0:
            return self._buffer.new_zeros(0)
        output = self._unreturned_output()
        self._buffer = self._buffer.new_zeros(0)
        return output

    def _unreturned_output(self) -> Tensor:
        """The buffer resampled, from the first output sample not yet returned."""
        output = torchaudio.functional.resample(self._buffer, self.orig_freq, self.new_freq)
        return output[(self._next_block - self._buffer_start // self.orig) * self.new :]
