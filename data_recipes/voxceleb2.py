"""VoxCeleb2 media + OpenFace FeatureExtraction CSVs -> speech_au shards (see ``voxceleb2`` or ``--help``)."""

from __future__ import annotations

import sys
from pathlib import Path

from cause_pl.cli.command import run_as_command
from cause_pl.features.mel import MelConfig
from cause_pl.shards.encode import DEFAULT_WORKERS, require_folder

RECIPES = str(Path(__file__).resolve().parent)
if RECIPES not in sys.path:  # there when run as a script, not when loaded by path (the tests)
    sys.path.insert(0, RECIPES)
from talking_heads import Thresholds, Utterance, hold_out, validation_count, write_speech_shards  # noqa: E402

MEDIA_FORMATS = {"aac": ".m4a", "mp4": ".mp4"}
DEFAULT_FRONTEND = MelConfig()


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
        key = f"{speaker}_{video}_{media.stem}".replace(".", "-")
        utterances.append(Utterance(str(media), str(csv), speaker, video, media.stem, key))
    return utterances


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
    items = {**hold_out(dev, {"val": validation_count(val_speakers, len(speakers))}), "test": test}
    thresholds = Thresholds(min_frames, min_valid, min_confidence)
    return write_speech_shards(
        out, items, frontend=frontend, thresholds=thresholds, workers=workers, shard_size=shard_size, desc="voxceleb2"
    )


if __name__ == "__main__":
    sys.exit(run_as_command(voxceleb2))
