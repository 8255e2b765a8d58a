"""Vector tools over the bytes of a CSV file: where a byte occurs (:class:`BitPositions`) and the
values of plain decimal cells, parsed all at once exactly as ``float`` parses them
(:func:`plain_decimals`). Used by :mod:`cause_pl.openface.table` for the files OpenFace writes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DIGITS = 15
"""Most digits of a decimal ``plain_decimals`` parses: below 10**15 < 2**53 the digits are an exact float64."""
_POWERS = np.array([float(10**exponent) for exponent in range(MAX_DIGITS + 1)])
"""10**k as float64, exact."""
_SPACE, _ZERO, _POINT, _MINUS = b" 0.-"
COMMA, NEWLINE, RETURN = b",\n\r"


def plain_decimals(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values of the cells ``data[start:end]`` that are plain decimals, and which cells are.

    A plain decimal is ``[ ]*-?D+(.D+)?[ ]*`` with at most ``MAX_DIGITS`` digits ``D``. Its value is
    ``digits / 10**decimals``, one correctly rounded division of two exact float64: the double nearest to
    the decimal, as ``float`` reads it (-0 included). The values of other cells are meaningless. Characters
    are laid out one position per row, so every step is a vector operation across all cells.
    """
    lengths = ends - starts
    offsets = np.arange(max(1, int(lengths.max(initial=0))))[:, None]
    inside = offsets < lengths
    chars = np.where(inside, data[np.minimum(starts + offsets, data.size - 1)], _SPACE)
    digit = chars - _ZERO  # uint8: anything but a digit wraps above 9
    is_digit, is_point, is_minus, filled = digit <= 9, chars == _POINT, chars == _MINUS, chars != _SPACE
    edge = np.zeros((1, chars.shape[1]), bool)
    before_digit, after_digit = np.vstack([is_digit[1:], edge]), np.vstack([edge, is_digit[:-1]])
    runs = filled[0] + np.count_nonzero(filled[1:] & ~filled[:-1], axis=0)
    digits = np.count_nonzero(is_digit, axis=0)
    plain = (
        (runs == 1)  # one run of characters: no space inside
        & ~(~(is_digit | is_point | is_minus) & filled).any(axis=0)
        & ~(is_minus & (np.vstack([edge, filled[:-1]]) | ~before_digit)).any(axis=0)  # a minus in front of a digit
        & ~(is_point & ~(before_digit & after_digit)).any(axis=0)  # a point between digits
        & (np.count_nonzero(is_point, axis=0) <= 1)
        & (digits >= 1)
        & (digits <= MAX_DIGITS)
    )
    mantissa, decimals = _digits(np.where(is_digit, digit, 0), is_digit, is_point)
    values = mantissa / _POWERS[np.minimum(decimals, MAX_DIGITS)]
    return np.where(is_minus.any(axis=0), -values, values), plain


def _digits(digit: np.ndarray, is_digit: np.ndarray, is_point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the (positions, cells) arrays: its digits read as one integer (float64, exact below
    2**53) and how many of them follow a point; Horner's rule, one position at a time."""
    mantissa, decimals = np.zeros(digit.shape[1]), np.zeros(digit.shape[1], np.int64)
    point_seen = np.zeros(digit.shape[1], bool)
    for position_digit, position_is_digit, position_is_point in zip(digit, is_digit, is_point, strict=True):
        mantissa *= np.where(position_is_digit, 10.0, 1.0)
        mantissa += position_digit
        point_seen |= position_is_point
        decimals += position_is_digit & point_seen
    return mantissa, decimals


@dataclass(frozen=True, eq=False)
class BitPositions:
    """Where a byte mask is set, as 64-bit words, with the count of set bits before each word."""

    words: np.ndarray  # uint64, bit i of word w: byte 64 * w + i; one more zero word at the end
    before: np.ndarray  # int64 (words,)

    @classmethod
    def of(cls, mask: np.ndarray) -> BitPositions:
        packed = np.packbits(mask, bitorder="little")
        words = np.concatenate([packed, np.zeros(8 + -packed.size % 8, np.uint8)]).view("<u8")
        counts = np.bitwise_count(words).astype(np.int64)
        return cls(words, np.cumsum(counts) - counts)

    def count_before(self, positions: np.ndarray) -> np.ndarray:
        """How many set bytes precede each of ``positions`` (each at most the mask's length)."""
        word = positions >> 6
        below = (np.uint64(1) << (positions & 63).astype(np.uint64)) - np.uint64(1)
        return self.before[word] + np.bitwise_count(self.words[word] & below)

    def positions(self) -> np.ndarray:
        """The set bytes, in order (cheaper than ``np.flatnonzero`` when they are few)."""
        hot = np.flatnonzero(self.words)
        bits = np.flatnonzero(np.unpackbits(self.words[hot].view(np.uint8), bitorder="little"))
        return hot[bits >> 6] * 64 + (bits & 63)
