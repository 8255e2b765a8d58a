"""VoxCeleb2 media + OpenFace FeatureExtraction CSVs -> speech_au shards (see ``voxceleb2`` or ``--help``)."""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from cause_pl.cli.command import UsageError, run_as_command
from cause_pl.features.mel import MelConfig
from cause_pl.media.audio import AudioError, load_audio
from cause_pl.openface.reader import AlignmentError, align_to_frames, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from cause_pl.shards.encode import DEFAULT_WORKERS, encode_speech, log_mel, print_summary, require_folder
from cause_pl.shards.schema import SPEECH_AU
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset

MEDIA_FORMATS = {"aac": ".m4a", "mp4": ".mp4"}
DEFAULT_FRONTEND = MelConfig()


@dataclass(frozen=True)
class Thresholds:
    """When an utterance is usable (see ``voxceleb2``'s arguments of the same names)."""

    min_frames: int = 25
    min_valid: float = 0.5
    min_confidence: float = 0.7


@dataclass(frozen=True)
class Utterance:
    """One utterance: its media file, its OpenFace CSV and its identifiers."""

    media: str
    csv: str
    speaker: str
    video: str
    utterance: str

    @property
    def key(self) -> str:
        return f"{self.speaker}_{self.video}_{self.utterance}".replace(".", "-")


def find_utterances(media_root: Path, openface_root: Path, split: str) -> list[Utterance]:
    """All utterances of one VoxCeleb2 split, sorted; prefers aac/ (audio only) over mp4/."""
    formats = [(media_root / split / folder, suffix) for folder, suffix in MEDIA_FORMATS.items()]
    present = [(base, suffix) for base, suffix in formats if base.is_dir()]
    if not present:
        return []
    base, suffix = present[0]
    utterances = []
    for media in sorted(base.glob(f"*/*/*{suffix}")):
        relative = media.relative_to(base).with_suffix(".csv")
        csv = openface_root / split / relative
        if not csv.exists():
            csv = openface_root / relative
        speaker, video = relative.parts[0], relative.parts[1]
        utterances.append(Utterance(str(media), str(csv), speaker, video, media.stem))
    return utterances


def validation_count(val_speakers: float, speakers: int) -> int:
    """How many of ``speakers`` dev speakers ``--val_speakers`` holds out, or a UsageError saying why not.

    0 holds out none; a fraction in (0, 1) holds out ``max(1, round(fraction * speakers))`` when there
    are at least two speakers (none of a single one); a whole number >= 1 is a count. Negative, NaN and
    fractional counts are refused, and so is holding out every speaker (nothing left to train on).
    """
    val_speakers = float(val_speakers)  # an int from a YAML config too
    flag = f"--val_speakers {val_speakers:g}"
    if math.isnan(val_speakers) or val_speakers < 0:
        raise UsageError(f"{flag}: must be 0 (no validation split), a fraction in (0, 1) or a count of speakers")
    if val_speakers < 1:
        count = max(1, round(val_speakers * speakers)) if val_speakers > 0 and speakers > 1 else 0
    elif not val_speakers.is_integer():
        raise UsageError(f"{flag}: a count of speakers must be a whole number (or give a fraction in (0, 1))")
    else:
        count = int(val_speakers)
    if count and count >= speakers:
        raise UsageError(f"{flag} holds out {count} of the {speakers} dev speakers: none would be left to train on")
    return count


def held_out_speakers(speakers: set[str], count: int) -> set[str]:
    """``count`` speakers chosen by a stable hash, so adding data never reshuffles the split."""
    ranked = sorted(speakers, key=lambda speaker: hashlib.sha1(speaker.encode()).hexdigest())
    return set(ranked[:count])


def process(config: MelConfig, thresholds: Thresholds, item: Utterance) -> Processed | Rejected:
    """Decode, compute the mel, align the OpenFace rows frame by frame, or say why not."""
    source = item.media
    if not Path(item.csv).is_file():
        return Rejected(source, f"no OpenFace CSV at {item.csv}")
    try:
        mel = log_mel(load_audio(item.media, config.sample_rate), config)
    except AudioError as error:
        return Rejected(source, f"undecodable audio: {error}")
    try:
        au, valid = align_to_frames(read_openface_csv(item.csv, min_confidence=thresholds.min_confidence), len(mel))
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


def voxceleb2(
    *,
    media: Path,
    openface: Path,
    out: Path,
    workers: int = DEFAULT_WORKERS,
    shard_size: int = 1000,
    val_speakers: float = 0.01,
    min_frames: int = Thresholds.min_frames,
    min_valid: float = Thresholds.min_valid,
    min_confidence: float = Thresholds.min_confidence,
    frontend: MelConfig = DEFAULT_FRONTEND,
) -> int:
    """VoxCeleb2 media + OpenFace FeatureExtraction CSVs -> speech_au shards (train / val / test).

    Media tree: MEDIA/{dev,test}/{aac,mp4}/idXXXXX/<video>/<utt>.{m4a,mp4}. The OpenFace tree mirrors
    it without the format folder: OPENFACE/{dev,test}/idXXXXX/<video>/<utt>.csv (or without the split
    folder: OPENFACE/idXXXXX/<video>/<utt>.csv). dev becomes train plus a validation split of held-out
    speakers; test stays test. Unusable utterances are listed in rejected.jsonl with the reason.

    Args:
        media: VoxCeleb2 root holding dev/ and/or test/
        openface: root of the OpenFace CSV tree
        out: output directory for shards, index.json and rejected.jsonl
        workers: parallel processes
        shard_size: utterances per shard
        val_speakers: dev speakers held out for validation: a fraction in (0, 1), a count, or 0 for none
        min_frames: shortest usable utterance in frames
        min_valid: least fraction of frames with a tracked face
        min_confidence: OpenFace confidence below which frames are invalid
        frontend: mel frontend (defaults: 16 kHz, 25 fps, 80 bands)
    """
    for flag, folder in (("--media", media), ("--openface", openface)):
        require_folder(folder, flag)
    dev = find_utterances(media, openface, "dev")
    test = find_utterances(media, openface, "test")
    if not dev and not test:
        raise ValueError(f"no utterances under {media}/{{dev,test}}/{{aac,mp4}}/idXXXXX/<video>/")
    speakers = {item.speaker for item in dev}
    held_out = held_out_speakers(speakers, validation_count(val_speakers, len(speakers)))
    items = {
        "train": [item for item in dev if item.speaker not in held_out],
        "val": [item for item in dev if item.speaker in held_out],
        "test": test,
    }
    thresholds = Thresholds(min_frames, min_valid, min_confidence)
    index = write_dataset(
        out,
        SPEECH_AU,
        plan_jobs(SPEECH_AU, items, shard_size),
        partial(process, frontend, thresholds),
        workers=workers,
        settings=asdict(thresholds),
        frontend=frontend.to_dict(),
        desc="voxceleb2",
    )
    print_summary(index, "utterances")
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(voxceleb2))
