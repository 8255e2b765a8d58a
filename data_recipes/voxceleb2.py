"""VoxCeleb2 media + OpenFace FeatureExtraction (or other per-frame) CSVs -> speech_au shards (see ``voxceleb2`` or
``--help``)."""

from __future__ import annotations

import sys
from pathlib import Path

from cause_pl.cli.command import run_as_command
from cause_pl.features.mel import MelConfig
from cause_pl.shards.encode import DEFAULT_WORKERS, require_folder

RECIPES = str(Path(__file__).resolve().parent)
if RECIPES not in sys.path:  # there when run as a script, not when loaded by path (the tests)
    sys.path.insert(0, RECIPES)
from talking_heads import (  # noqa: E402
    DEFAULT_SUFFIX,
    Kind,
    Thresholds,
    Utterance,
    hold_out,
    labels_path,
    target_spec,
    validation_count,
    write_speech_shards,
)

MEDIA_FORMATS = {"aac": ".m4a", "mp4": ".mp4"}
DEFAULT_FRONTEND = MelConfig()


def find_utterances(
    media_root: Path, openface_root: Path, split: str, labels_suffix: str = DEFAULT_SUFFIX
) -> list[Utterance]:
    """All utterances of one VoxCeleb2 split, sorted; prefers aac/ (audio only) over mp4/.

    Each one's CSV is ``<utt><labels_suffix>`` in the OpenFace tree (``.csv``: OpenFace's own).
    """
    formats = [(media_root / split / folder, suffix) for folder, suffix in MEDIA_FORMATS.items()]
    present = [(base, suffix) for base, suffix in formats if base.is_dir()]
    if not present:
        return []
    base, suffix = present[0]
    utterances = []
    for media in sorted(base.glob(f"*/*/*{suffix}")):
        relative = labels_path(media.relative_to(base), labels_suffix)
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
    targets: str = "aus",
    target_kind: Kind | None = None,
    target_low: float | None = None,
    target_high: float | None = None,
    labels_csv_suffix: str = DEFAULT_SUFFIX,
) -> int:
    """VoxCeleb2 media + OpenFace FeatureExtraction CSVs -> speech_au shards (train / val / test).

    Media tree: MEDIA/{dev,test}/{aac,mp4}/idXXXXX/<video>/<utt>.{m4a,mp4}. The OpenFace tree mirrors
    it without the format folder: OPENFACE/{dev,test}/idXXXXX/<video>/<utt>.csv (or without the split
    folder: OPENFACE/idXXXXX/<video>/<utt>.csv). dev becomes train plus a validation split of held-out
    speakers; test stays test. Unusable utterances are listed in rejected.jsonl with the reason.
    --targets picks what au.npy holds: OpenFace AUs (all 17, or a subset), or the columns of other per-frame
    CSVs with a timestamp column (e.g. --targets emotions --labels_csv_suffix .emotions.csv), found in the
    same tree and resampled onto the mel frames in time as OpenFace's rows are.

    Args:
        media: VoxCeleb2 root holding dev/ and/or test/
        openface: root of the CSV tree (OpenFace's, or the per-frame CSVs --labels_csv_suffix names)
        out: output directory for shards, index.json and rejected.jsonl
        workers: parallel processes
        shard_size: utterances per shard
        val_speakers: dev speakers held out for validation: a fraction in (0, 1), a count, or 0 for none
        min_frames: shortest usable utterance in frames
        min_valid: least fraction of frames with a tracked face
        min_confidence: OpenFace confidence below which frames are invalid
        frontend: mel frontend (defaults: 16 kHz, 25 fps, 80 bands)
        targets: what au.npy holds: a preset (aus: the 17 OpenFace AUs, disfa: 12 AUs, fera: 5 AUs,
            emotions: the 8 FERPlus class probabilities, arkit: 52 blendshapes) or a comma list of CSV
            columns: OpenFace AU columns (AU12_r,AU25_r) for an AU subset, or any columns with
            --target_low/--target_high or --target_kind distribution
        target_kind: with --targets columns: intensity (values in --target_low..--target_high, the default)
            or distribution (probabilities, each frame renormalised to sum 1)
        target_low: with --targets columns: lowest value (a distribution: 0)
        target_high: with --targets columns: highest value (a distribution: 1)
        labels_csv_suffix: file name ending of each utterance's per-frame CSV, replacing the media suffix
            (<utt>.csv: OpenFace's; e.g. .emotions.csv for <utt>.emotions.csv)
    """
    spec = target_spec(targets, target_kind, target_low, target_high)
    labels_path(Path("x.m4a"), labels_csv_suffix)  # a bad suffix is a usage error before anything is read
    for flag, folder in (("--media", media), ("--openface", openface)):
        require_folder(folder, flag)
    dev = find_utterances(media, openface, "dev", labels_csv_suffix)
    test = find_utterances(media, openface, "test", labels_csv_suffix)
    if not dev and not test:
        raise ValueError(f"no utterances under {media}/{{dev,test}}/{{aac,mp4}}/idXXXXX/<video>/")
    speakers = {item.speaker for item in dev}
    items = {**hold_out(dev, {"val": validation_count(val_speakers, len(speakers))}), "test": test}
    thresholds = Thresholds(min_frames, min_valid, min_confidence)
    return write_speech_shards(
        out,
        items,
        frontend=frontend,
        thresholds=thresholds,
        workers=workers,
        shard_size=shard_size,
        desc="voxceleb2",
        targets=spec,
    )


if __name__ == "__main__":
    sys.exit(run_as_command(voxceleb2))
