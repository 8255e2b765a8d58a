"""The synthetic speech corpus's emotion track: FERPlus class distributions as a known function of the AUs.

A face-emotion model reads expressions off the face; here the expression is the ground-truth AU
track (:func:`cause_pl.synthetic.speech_aus.au_tracks_from_latents`), so the emotion distribution
is a known function of audible latents too, and the paper's CME baseline (speech -> emotion
distribution) has exact labels. Each class's logit is a weighted sum of the AUs that FACS-based
emotion prototypes associate with it, averaged over about half a second; neutral has a constant
logit, so a still face is mostly neutral.
"""

from __future__ import annotations

import numpy as np

from cause_pl.au import NUM_AUS, au_index
from cause_pl.targets import FERPLUS_EMOTIONS

_PROTOTYPES: dict[str, dict[int, float]] = {
    "neutral": {},
    "happiness": {6: 1.0, 12: 1.2},
    "surprise": {1: 0.6, 2: 0.6, 5: 0.8, 26: 0.5},
    "sadness": {1: 0.5, 4: 0.7, 15: 1.0},
    "anger": {4: 0.8, 7: 0.8, 23: 0.8},
    "disgust": {9: 1.2, 10: 0.8},
    "fear": {1: 0.4, 2: 0.4, 4: 0.4, 20: 1.0},
    "contempt": {14: 1.4},
}
NEUTRAL_LOGIT = 1.5
SMOOTHING_FRAMES = 13
"""Frames averaged per logit (about half a second at 25 fps): emotions change slower than AUs."""


def _weights() -> np.ndarray:
    weights = np.zeros((NUM_AUS, len(FERPLUS_EMOTIONS)))
    for column, emotion in enumerate(FERPLUS_EMOTIONS):
        for code, weight in _PROTOTYPES[emotion].items():
            weights[au_index(code), column] = weight
    return weights


def emotion_tracks_from_aus(aus: np.ndarray) -> np.ndarray:
    """(frames, 17) AU intensities 0..5 -> (frames, 8) FERPlus class distributions (rows sum to 1)."""
    logits = np.asarray(aus, dtype=np.float64) @ _weights()
    logits[:, FERPLUS_EMOTIONS.index("neutral")] = NEUTRAL_LOGIT
    half = SMOOTHING_FRAMES // 2
    padded = np.pad(logits, ((half, half), (0, 0)), mode="edge")
    smoothed = np.stack([padded[i : i + len(logits)] for i in range(SMOOTHING_FRAMES)]).mean(axis=0)
    exp = np.exp(smoothed - smoothed.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
