"""The paper's naturalness test (CAUSE, Fig. 4) as a kit: a static listening page and its scoring.

``design`` draws each listener's randomised, blind playlist (with attention checks); ``page`` writes the
self-contained ``index.html``; ``build`` writes the kit folder around videos a renderer makes (the renderer
lives in :mod:`cause_pl.cli.mos`, the layer allowed to use :mod:`cause_pl.inference`); ``score`` turns the
downloaded ratings into MOS with 95% CIs and pairwise tests; ``figure`` draws them like Fig. 4.
"""

from __future__ import annotations

QUESTION = "How well do the face movement and expression in the animation match the expression and mood of the speech?"
"""The paper's question (section 4): rate the match of face and speech, a "naturalness score"."""
SCALE: dict[int, str] = {5: "Excellent", 4: "Good", 3: "Fair", 2: "Poor", 1: "Bad"}
"""The paper's 5-point scale."""
