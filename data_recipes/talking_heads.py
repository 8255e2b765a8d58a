"""What the talking-head recipes (``voxceleb2.py``, ``videos.py``) share: one utterance from its media file
and per-frame CSV (OpenFace's, or any other with a timestamp column) to a ``speech_au`` sample, the
targets from the flags, held-out speakers, and the run from items to shards.

Not a recipe itself: the recipes put this folder on ``sys.path`` and import it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

from cause_pl.cli.command import UsageError
from cause_pl.features.mel import MelConfig
from cause_pl.media.audio import AudioError, load_audio
from cause_pl.openface.reader import AlignmentError
from cause_pl.openface.table import OpenFaceError
from cause_pl.openface.targets import frame_targets
from cause_pl.shards.encode import encode_speech, log_mel, print_summary
from cause_pl.shards.schema import SPEECH_AU
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset
from cause_pl.targets import DEFAULT_TARGETS, PRESETS, TargetSpec, resolve_targets

Kind = Literal["intensity", "distribution"]
DEFAULT_SUFFIX = ".csv"


@dataclass(frozen=True)
class Thresholds:
    """When an utterance is usable (see the recipes' arguments of the same names)."""

    min_frames: int = 25
    min_valid: float = 0.5
    min_confidence: float = 0.7


@dataclass(frozen=True)
class Utterance:
    """One utterance: its media file, its per-frame CSV, its identifiers and its (dot-free) shard key."""

    media: str
    csv: str
    speaker: str
    video: str
    utterance: str
    key: str


def target_spec(targets: str, kind: Kind | None, low: float | None, high: float | None) -> TargetSpec:
    """The spec ``--targets`` names (a preset or CSV columns), or a UsageError saying why not.

    AU columns alone (``AU12_r`` or ``AU12``) give an AU subset (read from OpenFace CSVs); any other
    columns, or AU columns with a kind or range, give a custom spec: ``kind`` (default intensity) and
    ``low..high`` (a distribution's default 0..1; an intensity needs both).
    """
    flags = [f"--target_{name}" for name, value in (("kind", kind), ("low", low), ("high", high)) if value is not None]
    if targets in PRESETS:
        if flags:
            raise UsageError(f"{', '.join(flags)}: preset {targets!r} fixes its kind and range; only with columns")
        return PRESETS[targets]
    columns = tuple(part.strip() for part in targets.split(",") if part.strip())
    if not columns:
        raise UsageError(f"--targets {targets!r}: give a preset ({', '.join(PRESETS)}) or CSV columns")
    try:
        if not flags and all(column.upper().startswith("AU") for column in columns):
            return resolve_targets(list(columns))  # AU12_r or AU12
        if kind == "distribution":
            low, high = 0.0 if low is None else low, 1.0 if high is None else high
        elif low is None or high is None:
            raise UsageError(
                f"--targets {targets}: columns other than AUxx_r need --target_low and --target_high "
                "(or --target_kind distribution)"
            )
        return TargetSpec("custom", columns, columns, low, high, kind or "intensity")
    except (ValueError, KeyError) as error:
        raise UsageError(f"--targets {targets}: {error.args[0] if error.args else error}") from error


def labels_path(media: Path, suffix: str) -> Path:
    """The per-frame CSV of ``media`` (relative or not): its name with the media suffix replaced by ``suffix``."""
    if not suffix or "/" in suffix:
        raise UsageError(f"--labels_csv_suffix {suffix!r}: a file name ending such as .csv or .emotions.csv")
    return media.with_name(media.stem + suffix)


def validation_count(
    val_speakers: float,
    speakers: int,
    flag: str = "--val_speakers",
    split: str = "validation",
    pool: str = "dev speakers",
) -> int:
    """How many of ``speakers`` speakers ``flag`` holds out for ``split``, or a UsageError saying why not.

    0 holds out none; a fraction in (0, 1) holds out ``max(1, round(fraction * speakers))`` when there
    are at least two speakers (none of a single one); a whole number >= 1 is a count. Negative, NaN and
    fractional counts are refused, and so is holding out every speaker (nothing left to train on).
    """
    val_speakers = float(val_speakers)  # an int from a YAML config too
    flag = f"{flag} {val_speakers:g}"
    if math.isnan(val_speakers) or val_speakers < 0:
        raise UsageError(f"{flag}: must be 0 (no {split} split), a fraction in (0, 1) or a count of speakers")
    if val_speakers < 1:
        count = max(1, round(val_speakers * speakers)) if val_speakers > 0 and speakers > 1 else 0
    elif not val_speakers.is_integer():
        raise UsageError(f"{flag}: a count of speakers must be a whole number (or give a fraction in (0, 1))")
    else:
        count = int(val_speakers)
    if count and count >= speakers:
        raise UsageError(f"{flag} holds out {count} of the {speakers} {pool}: none would be left to train on")
    return count


def hold_out(items: Sequence[Utterance], counts: Mapping[str, int]) -> dict[str, list[Utterance]]:
    """``items`` split by speaker: each split of ``counts``, in order, takes its count of the speakers ranked
    by a stable hash (so adding data never reshuffles the splits); the rest is ``train``."""
    ranked = sorted({item.speaker for item in items}, key=lambda speaker: hashlib.sha1(speaker.encode()).hexdigest())
    split_of: dict[str, str] = {}
    for split, count in counts.items():
        taken = ranked[len(split_of) : len(split_of) + count]
        split_of.update(dict.fromkeys(taken, split))
    splits: dict[str, list[Utterance]] = {"train": [], **{split: [] for split in counts}}
    for item in items:
        splits[split_of.get(item.speaker, "train")].append(item)
    return splits


def process(
    config: MelConfig, thresholds: Thresholds, item: Utterance, targets: TargetSpec = DEFAULT_TARGETS
) -> Processed | Rejected:
    """Decode, compute the mel, resample the CSV's rows onto the mel frames, or say why not."""
    source = item.media
    kind = "OpenFace" if targets.is_aus else "targets"
    if not Path(item.csv).is_file():
        return Rejected(source, f"no {kind} CSV at {item.csv}")
    try:
        mel = log_mel(load_audio(item.media, config.sample_rate), config)
    except AudioError as error:
        return Rejected(source, f"undecodable audio: {error}")
    try:  # in time: the video may have any frame rate
        au, valid = frame_targets(item.csv, targets, len(mel), fps=config.fps, min_confidence=thresholds.min_confidence)
    except AlignmentError as error:
        return Rejected(source, f"misaligned: {error}")
    except OpenFaceError as error:
        return Rejected(source, f"bad {kind} CSV: {error}")
    if len(au) < thresholds.min_frames:
        return Rejected(source, f"too short: {len(au)} frames < --min_frames {thresholds.min_frames}")
    valid_fraction = float(np.mean(valid))
    if valid_fraction < thresholds.min_valid:
        return Rejected(source, f"faceless: {valid_fraction:.0%} of frames have a tracked face (< --min_valid)")
    meta = {
        "speaker": item.speaker,
        "video": item.video,
        "utterance": item.utterance,
        "fps": config.fps,
        "sample_rate": config.sample_rate,
    }
    return encode_speech(item.key, mel, au, valid, meta, targets)


def write_speech_shards(
    out: Path,
    items: Mapping[str, Sequence[Utterance]],
    *,
    frontend: MelConfig,
    thresholds: Thresholds,
    workers: int,
    shard_size: int,
    desc: str,
    targets: TargetSpec = DEFAULT_TARGETS,
) -> int:
    """Write each split's utterances as ``speech_au`` shards, index.json and rejected.jsonl; print the summary.

    The default targets (the 17 AUs) leave index.json without a ``targets`` entry, as before targets existed.
    """
    index = write_dataset(
        out,
        SPEECH_AU,
        plan_jobs(SPEECH_AU, items, shard_size),
        partial(process, frontend, thresholds, targets=targets),
        workers=workers,
        settings=asdict(thresholds),
        frontend=frontend.to_dict(),
        targets=None if targets == DEFAULT_TARGETS else targets.to_dict(),
        desc=desc,
    )
    print_summary(index, "utterances")
    return 0
