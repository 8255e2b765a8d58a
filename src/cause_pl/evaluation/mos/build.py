"""Write a naturalness-test kit folder: ``videos/``, ``index.html`` and ``manifest.json``.

Rendering is the caller's: a :class:`Renderer` (``cause-pl mos-build`` passes one built on
:class:`cause_pl.inference.animator.SpeechToFaceAnimator`) writes each (system, utterance) video once,
and the attention checks' still face once. The JSON and HTML are written atomically, after the videos.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from cause_pl.evaluation.mos.design import Design, still_video
from cause_pl.evaluation.mos.page import DEFAULT_TITLE, render_page
from cause_pl.media.atomic import atomic_output

KIT_FILES = ("index.html", "manifest.json", "videos")
"""What a kit folder holds (removed first when a kit is rebuilt over an old one)."""


class Renderer(Protocol):
    """Makes the kit's videos (mp4 with sound)."""

    def render_item(self, system: str, utterance: str, out: Path) -> None:
        """Write the video of ``system`` animating ``utterance`` to ``out``."""

    def render_still(self, out: Path) -> None:
        """Write the attention checks' video (a still face) to ``out``."""


def prepare_folder(out: Path, overwrite: bool) -> None:
    """Make ``out``; a non-empty ``out`` is refused unless ``overwrite`` (then its old kit files go)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "not a folder", str(out))
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(17, "output folder is not empty (--overwrite replaces its kit)", str(out))
        for name in KIT_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def write_json(data: Any, path: Path) -> Path:
    """``data`` as indented JSON at ``path``, atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def kit_id(manifest: dict[str, Any]) -> str:
    """A short id of the kit's content (keys the page's saved ratings, so two kits never mix)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def build_kit(
    out: Path, design: Design, renderer: Renderer, title: str = DEFAULT_TITLE, progress: bool = False
) -> dict[str, Any]:
    """Render every video of ``design`` into ``out/videos`` and write the page and manifest; returns the manifest.

    ``out`` should have been through :func:`prepare_folder`.
    """
    jobs: list[tuple[str, str | None, Path]] = [
        (item.system, item.utterance, out / item.video) for item in design.items.values()
    ]
    if (still := still_video(design)) is not None:
        jobs.append(("", None, out / still))
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for system, utterance, path in tqdm(jobs, desc="rendering", unit="video", disable=not progress):
        if utterance is None:
            renderer.render_still(path)
        else:
            renderer.render_item(system, utterance, path)
    manifest = design.to_manifest()
    manifest["kit"] = kit = kit_id(manifest)
    manifest["title"] = title
    write_json(manifest, out / "manifest.json")
    with atomic_output(out / "index.html") as temporary:
        temporary.write_text(render_page(design, kit, title), encoding="utf-8")
    return manifest
