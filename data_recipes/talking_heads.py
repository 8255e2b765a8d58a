"""What the talking-head recipes (``voxceleb2.py``, ``videos.py``) share: one utterance from its media file
and OpenFace CSV to a ``speech_au`` sample, held-out speakers, and the run from items to shards.

Not a recipe itself: the recipes put this folder on ``sys.path`` and import it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from cause_pl.cli.command import UsageError
from cause_pl.features.mel import MelConfig
from cause_pl.media.audio import AudioError, load_audio
from cause_pl.openface.reader import AlignmentError, align_to_frames, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from cause_pl.shards.encode import encode_speech, log_mel, print_summary
from cause_pl.shards.schema import SPEECH_AU
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset


@dataclass(frozen=True)
class Thresholds:
    """When an utterance is usable (see the recipes' arguments of the same names)."""

    min_frames: int = 25
    min_valid: float = 0.5
    min_confidence: float = 0.7


@dataclass(frozen=True)
class Utterance:
    """One utterance: its media file, its OpenFace CSV, its identifiers and its (dot-free) shard key."""

    media: str
    csv: str
    speaker: str
    video: str
    utterance: str
    key: str


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


def process(config: MelConfig, thresholds: Thresholds, item: Utterance) -> Processed | Rejected:
    """Decode, compute the mel, resample the OpenFace rows onto the mel frames, or say why not."""
    source = item.media
    if not Path(item.csv).is_file():
        return Rejected(source, f"no OpenFace CSV at {item.csv}")
    try:
        mel = log_mel(load_audio(item.media, config.sample_rate), config)
    except AudioError as error:
        return Rejected(source, f"undecodable audio: {error}")
    try:
        track = read_openface_csv(item.csv, min_confidence=thresholds.min_confidence)
        au, valid = align_to_frames(track, len(mel), fps=config.fps)  # in time: the video may have any frame rate
    except AlignmentError as error:
        return Rejected(source, f"misaligned: {error}")
    except OpenFaceError as error:
        return Rejected(source, f"bad OpenFace CSV: {error}")
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
    return encode_speech(item.key, mel, au, valid, meta)


def write_speech_shards(
    out: Path,
    items: Mapping[str, Sequence[Utterance]],
    *,
    frontend: MelConfig,
    thresholds: Thresholds,
    workers: int,
    shard_size: int,
    desc: str,
) -> int:
    """Write each split's utterances as ``speech_au`` shards, index.json and rejected.jsonl; print the summary."""
    index = write_dataset(
        out,
        SPEECH_AU,
        plan_jobs(SPEECH_AU, items, shard_size),
        partial(process, frontend, thresholds),
        workers=workers,
        settings=asdict(thresholds),
        frontend=frontend.to_dict(),
        desc=desc,
    )
    print_summary(index, "utterances")
    return 0
