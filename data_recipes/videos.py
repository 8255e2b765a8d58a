"""Your own talking-head videos + OpenFace FeatureExtraction CSVs -> speech_au shards (see ``videos`` or ``--help``)."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from cause_pl.cli.command import UsageError, require_file, run_as_command
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

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".3gp")
"""Media files the folder walk picks up (any case); a manifest may list any file FFmpeg decodes."""
SPLITS = ("train", "val", "test")
DEFAULT_FRONTEND = MelConfig()
DEFAULT_VAL_SPEAKERS = 0.01


@dataclass(frozen=True)
class Listed:
    """One video: its path relative to --media, its speaker and its split (None: held out by the flags)."""

    path: Path
    speaker: str
    split: str | None = None


def find_videos(media: Path) -> list[Listed]:
    """Every video under ``media``, sorted; the first folder level below ``media`` names the speaker."""
    found = sorted(
        path.relative_to(media) for path in media.rglob("*") if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file()
    )
    for path in found:
        if len(path.parts) < 2:
            raise ValueError(
                f"{media / path}: not in a speaker folder; put each speaker's videos in MEDIA/<speaker>/ "
                "or list them with --manifest"
            )
    return [Listed(path, path.parts[0]) for path in found]


def read_manifest(manifest: Path, media: Path) -> list[Listed]:
    """The videos a CSV with columns ``path,speaker[,split]`` lists; ValueError ``FILE:LINE: ...`` on a bad row."""
    with open(manifest, newline="") as stream:
        reader = csv.DictReader(stream)
        columns = [name.strip() for name in reader.fieldnames or []]
        if not {"path", "speaker"} <= set(columns):
            raise ValueError(f"{manifest}: needs the columns path,speaker (and optionally split), found {columns}")
        reader.fieldnames = columns
        has_split = "split" in columns
        listed: list[Listed] = []
        lines: dict[Path, int] = {}
        for row in reader:
            where = f"{manifest}:{reader.line_num}"
            name, speaker = (row["path"] or "").strip(), (row["speaker"] or "").strip()
            split = (row["split"] or "").strip() if has_split else None
            if not name or not speaker:
                raise ValueError(f"{where}: every row needs a path and a speaker")
            path = Path(name)
            if split is not None and split not in SPLITS:
                raise ValueError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
            if path in lines:
                raise ValueError(f"{where}: {path} listed twice (lines {lines[path]} and {reader.line_num})")
            if not (media / path).is_file():
                raise ValueError(f"{where}: no such video {media / path}")
            lines[path] = reader.line_num
            listed.append(Listed(path, speaker, split))
    if not listed:
        raise ValueError(f"{manifest}: no videos listed")
    return listed


def utterances(
    listed: list[Listed], media: Path, openface: Path | None, suffix: str = DEFAULT_SUFFIX
) -> list[Utterance]:
    """Each video with its CSV ``<stem><suffix>`` (beside it, or at the same place under ``openface``) and a
    unique, dot-free key."""
    csv_of: dict[Path, Path] = {}
    keys: set[str] = set()
    items = []
    for video in listed:
        csv_path = labels_path((media if openface is None else openface) / video.path, suffix)
        if csv_path in csv_of:
            raise ValueError(f"{media / csv_of[csv_path]} and {media / video.path} would share the CSV {csv_path}")
        csv_of[csv_path] = video.path
        base = f"{video.speaker}_{video.path.with_suffix('').as_posix()}".replace("/", "_").replace(".", "-")
        key, number = base, 1
        while key in keys:
            number += 1
            key = f"{base}_{number}"
        keys.add(key)
        media_path = str(media / video.path)
        items.append(Utterance(media_path, str(csv_path), video.speaker, video.path.as_posix(), video.path.stem, key))
    return items


def split_items(
    listed: list[Listed], items: list[Utterance], val_speakers: float | None, test_speakers: float | None
) -> dict[str, list[Utterance]]:
    """The manifest's splits, or train plus the speakers ``--val_speakers``/``--test_speakers`` hold out."""
    if listed[0].split is not None:
        given = [
            flag
            for flag, value in (("--val_speakers", val_speakers), ("--test_speakers", test_speakers))
            if value is not None
        ]
        if given:
            raise UsageError(f"{' and '.join(given)}: the manifest's split column already assigns every video")
        return {
            split: [item for item, row in zip(items, listed, strict=True) if row.split == split] for split in SPLITS
        }
    speakers = len({item.speaker for item in items})
    val = DEFAULT_VAL_SPEAKERS if val_speakers is None else val_speakers
    test = test_speakers or 0.0
    counts = {
        "val": validation_count(val, speakers, pool="speakers"),
        "test": validation_count(test, speakers, "--test_speakers", "test", "speakers"),
    }
    if sum(counts.values()) >= speakers:  # each alone leaves some: validation_count checked that
        raise UsageError(
            f"--val_speakers {val:g} and --test_speakers {test:g} hold out {sum(counts.values())} of the "
            f"{speakers} speakers: none would be left to train on"
        )
    return hold_out(items, counts)


def videos(
    *,
    media: Path,
    out: Path,
    openface: Path | None = None,
    manifest: Path | None = None,
    workers: int = DEFAULT_WORKERS,
    shard_size: int = 1000,
    val_speakers: float | None = None,
    test_speakers: float | None = None,
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
    """Talking-head videos + OpenFace FeatureExtraction CSVs -> speech_au shards (train / val / test).

    Videos (mp4, mkv, mov, avi, webm, wmv, ... at any frame rate) lie under MEDIA/<speaker>/ (any depth
    below), each with OPENFACE/<same relative path>.csv, or with <video stem>.csv beside it when --openface
    is not given. Or --manifest lists them: a CSV with the columns path (relative to MEDIA), speaker and,
    optionally, split (train, val or test). Without a split column, --val_speakers and --test_speakers hold
    out speakers chosen by a stable hash. Unusable videos are listed in rejected.jsonl with the reason.
    --targets picks what au.npy holds: OpenFace AUs (all 17, or a subset), or the columns of other per-frame
    CSVs with a timestamp column (e.g. --targets emotions --labels_csv_suffix .emotions.csv: <video
    stem>.emotions.csv), found in the same places and resampled onto the mel frames in time as OpenFace's rows are.

    Args:
        media: folder holding the videos
        out: output directory for shards, index.json and rejected.jsonl
        openface: root of a CSV tree mirroring MEDIA (default: the CSVs lie beside the videos)
        manifest: CSV with columns path,speaker[,split] naming the videos instead of the speaker folders
        workers: parallel processes
        shard_size: utterances per shard
        val_speakers: speakers held out for validation: a fraction in (0, 1), a count, or 0 for none
            (default 0.01); not with a manifest's split column
        test_speakers: speakers held out for testing, like --val_speakers (default none); not with a
            manifest's split column
        min_frames: shortest usable video in mel frames
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
        labels_csv_suffix: file name ending of each video's per-frame CSV, replacing the video's suffix
            (<stem>.csv: OpenFace's; e.g. .emotions.csv for <stem>.emotions.csv)
    """
    spec = target_spec(targets, target_kind, target_low, target_high)
    labels_path(Path("x.mp4"), labels_csv_suffix)  # a bad suffix is a usage error before anything is read
    require_folder(media, "--media")
    if openface is not None:
        require_folder(openface, "--openface")
    listed = find_videos(media) if manifest is None else read_manifest(require_file(manifest, "--manifest"), media)
    if not listed:
        raise ValueError(f"no videos ({' '.join(VIDEO_SUFFIXES)}) under {media}/<speaker>/")
    items = split_items(listed, utterances(listed, media, openface, labels_csv_suffix), val_speakers, test_speakers)
    thresholds = Thresholds(min_frames, min_valid, min_confidence)
    return write_speech_shards(
        out,
        items,
        frontend=frontend,
        thresholds=thresholds,
        workers=workers,
        shard_size=shard_size,
        desc="videos",
        targets=spec,
    )


if __name__ == "__main__":
    sys.exit(run_as_command(videos))
