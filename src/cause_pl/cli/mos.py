"""``cause-pl mos-build`` and ``cause-pl mos-score``: the paper's naturalness test (Fig. 4) as a kit.

The kit's page, design and scoring live in :mod:`cause_pl.evaluation.mos`; the videos are rendered here,
by :class:`cause_pl.inference.animator.SpeechToFaceAnimator`, because ``evaluation`` and ``inference`` are
sibling layers that must not import each other (``pyproject.toml``, import-linter).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cause_pl.cli.command import UsageError, require_file

CHECKPOINT_SUFFIX = ".ckpt"


def parse_systems(systems: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` pairs; PATH a CAUSE checkpoint (.ckpt file) or a folder of per-utterance AU CSVs."""
    parsed: dict[str, Path] = {}
    for entry in systems:
        name, _, path = entry.partition("=")
        if not name or not path or name in parsed:
            raise UsageError(f"--systems: {entry!r} is not NAME=PATH with a new NAME")
        target = Path(path)
        if not (target.is_dir() or (target.is_file() and target.suffix == CHECKPOINT_SUFFIX)):
            raise UsageError(
                f"--systems {name}: {path} is neither a CAUSE checkpoint (.ckpt file) nor a folder of AU CSVs"
            )
        parsed[name] = target
    if not any(path.is_file() for path in parsed.values()):
        raise UsageError("--systems: at least one system must be a CAUSE checkpoint (the renderer's audio frontend)")
    return parsed


def mos_build(
    *,
    audio: list[Path],
    face: Path,
    ganimation_ckpt: Path,
    systems: list[str],
    out: Path,
    listeners: int = 24,
    per_listener: int = 0,
    attention_checks: int = 2,
    seed: int = 0,
    title: str = "Naturalness test",
    au_scale: float = 1.0,
    smoothing: int = 1,
    batch_frames: int = 32,
    device: str = "cpu",
    no_align: bool = False,
    face_index: int = 0,
    overwrite: bool = False,
) -> int:
    """Build a naturalness-test kit: every (system, utterance) video once, a static page, a manifest.

    OUT/index.html is one self-contained page (no server, no network): each listener enters their number
    (or opens index.html?listener=N), watches their randomised, blind playlist (videos are named by opaque
    ids), rates each video on the paper's 5-point scale once it has played to its end, and downloads their
    ratings (JSON or CSV). OUT/manifest.json maps ids to systems for `cause-pl mos-score OUT RATINGS...`.

    Args:
        audio: utterances, one or more audio files (their names without suffix must differ)
        face: face image every system animates
        ganimation_ckpt: GANimation checkpoint
        systems: NAME=PATH, one or more: PATH a CAUSE checkpoint (.ckpt) or a folder of AU CSVs named like
            the utterances (OpenFace-style, e.g. UTTERANCE.csv): --systems cnn=cnn.ckpt truth=au_csvs/
        out: kit folder (refused when not empty, unless --overwrite)
        listeners: number of listeners (playlists 1..N)
        per_listener: items each listener rates (0 = every system x utterance pair)
        attention_checks: still-face videos per listener captioned with the rating to give
        seed: seed of the randomisation (the same arguments give the same kit)
        title: page title
        au_scale: multiply the AU intensities CAUSE estimates (0 = still face)
        smoothing: moving-average window of the estimated AUs in frames (odd; 1 = none)
        batch_frames: frames generated per batch
        device: torch device the nets run on, e.g. cpu or cuda
        no_align: centre-crop the face image instead of finding and aligning the face
        face_index: which face to animate, faces sorted by size (0 = the largest)
        overwrite: replace the kit in a non-empty OUT
    """
    from cause_pl.cli.estimate import checked_device
    from cause_pl.cli.mos_render import AnimatorRenderer
    from cause_pl.evaluation.mos.build import build_kit, prepare_folder
    from cause_pl.evaluation.mos.design import make_design

    checked_device(device)
    named = parse_systems(systems)
    stems = [path.stem for path in audio]
    if len(set(stems)) != len(stems):
        raise UsageError(f"--audio: utterance names (file names without suffix) must differ, got {stems}")
    for flag, path in (("--ganimation_ckpt", ganimation_ckpt), ("--face", face), *(("--audio", a) for a in audio)):
        require_file(path, flag)
    for name, folder in named.items():
        if folder.is_dir():
            for stem in stems:
                require_file(folder / f"{stem}.csv", f"--systems {name}")
    try:
        design = make_design(list(named), stems, listeners, per_listener, attention_checks, seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    prepare_folder(out, overwrite)
    renderer = AnimatorRenderer(
        named,
        dict(zip(stems, audio, strict=True)),
        face,
        ganimation_ckpt,
        device=device,
        align=not no_align,
        face_index=face_index,
        options={"au_scale": au_scale, "smoothing_frames": smoothing, "frames_per_batch": batch_frames},
    )
    manifest = build_kit(out, design, renderer, title, progress=True)
    print(
        f"{out}: {len(manifest['items'])} videos ({len(named)} systems x {len(stems)} utterances), "
        f"{listeners} listeners; open {out / 'index.html'} (or index.html?listener=N)",
        file=sys.stderr,
    )
    return 0


def mos_score(out: Path, ratings: list[Path], *, max_failed_checks: int = 0, alpha: float = 0.05) -> int:
    """Score a naturalness test: MOS per system with 95% CIs and pairwise tests, from the downloaded ratings.

    Listeners who failed more than --max_failed_checks attention checks are dropped. MOS is the mean of all
    ratings of a system, its 95% CI the t interval over those ratings; pairs of systems are compared by the
    Wilcoxon signed-rank test on per-listener means (exact up to 50 listeners), Holm-corrected. Prints the
    table and writes OUT/mos.md, OUT/mos.csv and the bar chart OUT/mos.png (as the paper's Fig. 4).

    Args:
        out: kit folder made by `cause-pl mos-build` (reads OUT/manifest.json)
        ratings: rating files downloaded from the page (.json or .csv), one per listener
        max_failed_checks: attention checks a listener may get wrong and still count
        alpha: significance level of the Holm-corrected pairwise tests
    """
    from cause_pl.evaluation.mos.figure import save_mos_chart
    from cause_pl.evaluation.mos.report import csv_text, markdown, write_text
    from cause_pl.evaluation.mos.score import read_manifest, score

    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    if max_failed_checks < 0:
        raise UsageError(f"--max_failed_checks must be >= 0, got {max_failed_checks}")
    design = read_manifest(require_file(out / "manifest.json", "OUT"))
    for path in ratings:
        require_file(path, "RATINGS")
    result = score(design, ratings, max_failed_checks, alpha)
    report = markdown(result)
    write_text(report, out / "mos.md")
    write_text(csv_text(result), out / "mos.csv")
    save_mos_chart(result, out / "mos.png")
    print(report, end="")
    print(
        f"attention checks: {len(result.dropped)} of {len(result.dropped) + len(result.listeners)} listeners dropped",
        file=sys.stderr,
    )
    return 0
