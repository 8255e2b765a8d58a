"""The listening page: one self-contained ``index.html`` (CSS, script and playlists inline; no network).

The page knows only opaque item ids, video paths and attention-check captions (:meth:`Design.page_playlists`),
never system names. A listener enters their number (or opens ``index.html?listener=N``), watches each
video, whose rating buttons unlock only once it has played to its end, rates it on the paper's 5-point
scale, and at the end downloads a JSON (or CSV) file of their ratings with timestamps and attention-check
results. Ratings are kept in ``localStorage`` under the kit's id, so a reload resumes where it stopped.
"""

from __future__ import annotations

import json
from importlib import resources

from cause_pl.evaluation.mos import QUESTION, SCALE
from cause_pl.evaluation.mos.design import Design

DEFAULT_TITLE = "Naturalness test"


def _asset(name: str) -> str:
    return resources.files("cause_pl.evaluation.mos").joinpath("static", name).read_text(encoding="utf-8")


def page_config(design: Design, kit: str, title: str = DEFAULT_TITLE) -> dict[str, object]:
    """What the page's script reads: title, question, scale, kit id and the blind playlists."""
    return {
        "kit": kit,
        "title": title,
        "question": QUESTION,
        "scale": {str(value): label for value, label in SCALE.items()},
        "playlists": design.page_playlists(),
    }


def render_page(design: Design, kit: str, title: str = DEFAULT_TITLE) -> str:
    """The HTML of ``index.html`` for ``design``; ``kit`` names the kit (keys its saved ratings)."""
    config = json.dumps(page_config(design, kit, title), indent=1, ensure_ascii=False)
    config = config.replace("</", "<\\/")  # never closes the <script> element early
    html = _asset("page.html")
    for marker, text in (("/*__CSS__*/", _asset("page.css")), ("/*__JS__*/", _asset("page.js"))):
        html = html.replace(marker, text)
    return html.replace("/*__CONFIG__*/", config)
