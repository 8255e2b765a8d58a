"""The synthetic speech corpus's ground truth: AU intensities as a known function of audible latents.

:func:`au_tracks_from_latents` reads per-frame latent quantities that are audible (loudness
envelope, pitch, vowel openness and frontness, the speaker's voice) over asymmetric windows of
neighbouring frames, so a model that sees context beats one that sees a single frame. AU45 (blink)
follows random blinks that the audio cannot predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cause_pl.au import AU_MAX, AU_MIN, NUM_AUS, au_index


@dataclass(frozen=True, eq=False)
class SpeechLatents:
    """Per-frame quantities the AUs are computed from (frame ``i`` is at ``i / fps`` seconds).

    ``envelope`` voiced loudness 0..1; ``pitch`` semitones relative to the speaker's base pitch;
    ``openness`` and ``frontness`` of the current vowel 0..1 (first and second formant height);
    ``blink`` eyelid closure 0..1 (not in the audio); ``voice`` the speaker's traits in -1..1
    (pitch height, vocal-tract length, expressiveness).
    """

    envelope: np.ndarray
    pitch: np.ndarray
    openness: np.ndarray
    frontness: np.ndarray
    blink: np.ndarray
    voice: np.ndarray


def _kernel(first: int, last: int, centre: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian weights on frame offsets ``first..last`` (negative = past), summing to 1."""
    offsets = np.arange(first, last + 1)
    weights = np.exp(-0.5 * ((offsets - centre) / width) ** 2)
    return offsets, weights / weights.sum()


_ANTICIPATORY = _kernel(-2, 4, 1.5, 1.2)  # the face moves ~60 ms before the sound


_BROW = _kernel(-3, 3, 0.0, 1.5)


_LONG = _kernel(-6, 6, 0.0, 3.0)


_LAGGING = _kernel(-6, 0, -2.0, 2.0)  # slow to relax after the cause


def _windowed(track: np.ndarray, kernel: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``out[i] = sum_j w_j * track[i + offset_j]``, the track held constant beyond its ends."""
    offsets, weights = kernel
    before, after = max(0, -offsets[0]), max(0, offsets[-1])
    padded = np.pad(track, (before, after), mode="edge")
    frames = len(track)
    return sum(w * padded[before + o : before + o + frames] for o, w in zip(offsets, weights, strict=True))


def _rise(track: np.ndarray) -> np.ndarray:
    """Per-frame change (central difference), in track units per frame."""
    padded = np.pad(track, 1, mode="edge")
    return (padded[2:] - padded[:-2]) / 2


# Speaker offset per AU = weights . voice traits (pitch height, tract length, expressiveness).
_VOICE_OFFSETS = {
    1: (0.2, 0, 0.3),
    2: (0.1, 0, 0.3),
    4: (-0.3, 0.3, -0.2),
    6: (0.2, 0, 0.2),
    7: (0, 0.3, -0.1),
    12: (0.3, -0.1, 0.4),
    14: (0, 0.2, 0),
    15: (-0.2, 0.1, 0),
    17: (0, 0.2, -0.2),
    20: (0.2, 0, 0),
}


def au_tracks_from_latents(latents: SpeechLatents) -> np.ndarray:
    """The ground-truth AU intensities (frames, 17) in 0..5, before tracking failures.

    Mouth AUs follow the envelope and vowel shape slightly ahead of the sound; smile and cheek
    follow pitch accents over a long window (the cheek lagging); brows follow pitch rises and
    falls; the brow lowerer follows loudness dips; the chin raiser the moments after a syllable
    ends; every AU gets a constant offset from the speaker's voice; AU45 follows the blinks.
    """
    env, pitch = latents.envelope.astype(np.float64), latents.pitch.astype(np.float64)
    openness, front = latents.openness.astype(np.float64), latents.frontness.astype(np.float64)
    accent = np.maximum(pitch - 1.0, 0.0) * env
    rise = _rise(pitch) * _windowed(env, _BROW)
    drivers = {
        1: 3.5 * _windowed(np.maximum(rise, 0), _BROW),
        2: 1.8 * _windowed(np.maximum(rise, 0), _LONG) + 0.3 * _windowed(accent, _LONG),
        4: 3.0 * np.maximum(0.5 - _windowed(env, _LONG), 0),
        5: 8.0 * _windowed(np.maximum(env - 0.65, 0), _BROW),
        6: 0.9 * _windowed(accent, _LAGGING),
        7: 1.5 * _windowed(np.maximum(-pitch, 0) * env, _LONG),
        9: 6.0 * _windowed(np.maximum(front - 0.7, 0) * env, _ANTICIPATORY),
        10: 2.5 * _windowed(env * (1 - openness) * front, _ANTICIPATORY),
        12: 0.9 * _windowed(accent, _LONG),
        14: 5.0 * _windowed(np.maximum(-_rise(env), 0), _LAGGING),
        15: 3.5 * _windowed(np.maximum(-rise, 0), _BROW),
        17: 4.0 * np.maximum(_windowed(env, _LAGGING) - env, 0),
        20: 3.0 * _windowed(env * front, _ANTICIPATORY),
        23: 3.5 * _windowed(env * (1 - front) * (1 - openness), _ANTICIPATORY),
        25: 4.5 * _windowed(env, _ANTICIPATORY),
        26: 5.0 * _windowed(env * openness, _ANTICIPATORY),
        45: 5.0 * latents.blink.astype(np.float64),
    }
    voice = latents.voice.astype(np.float64)
    tracks = np.zeros((len(env), NUM_AUS))
    for code, driver in drivers.items():
        offset = float(np.dot(_VOICE_OFFSETS.get(code, (0, 0, 0)), voice))
        tracks[:, au_index(code)] = driver + max(offset, 0.0)
    return np.clip(tracks, AU_MIN, AU_MAX).astype(np.float32)
