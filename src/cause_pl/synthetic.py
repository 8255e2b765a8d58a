"""Procedural toy corpora with exact ground truth: speech + AU tracks, and faces + AUs.

The speech corpus lives in :mod:`cause_pl.synthetic_speech`, the faces in
:mod:`cause_pl.synthetic_faces`; this module is the public entry point for both.
"""

from __future__ import annotations

from cause_pl.synthetic_faces import (
    FaceIdentity,
    SyntheticFace,
    corpus_identity,
    draw_face,
    random_identity,
    synth_face,
)
from cause_pl.synthetic_speech import (
    SpeechLatents,
    SyntheticUtterance,
    au_tracks_from_latents,
    iter_speech_corpus,
    synth_utterance,
)

__all__ = [
    "FaceIdentity",
    "SpeechLatents",
    "SyntheticFace",
    "SyntheticUtterance",
    "au_tracks_from_latents",
    "corpus_identity",
    "draw_face",
    "iter_speech_corpus",
    "random_identity",
    "synth_face",
    "synth_utterance",
]
