"""VoxCeleb2 media + OpenFace FeatureExtraction CSVs -> speech_au shards (train / val / test).

Media tree: MEDIA/{dev,test}/{aac,mp4}/idXXXXX/<video>/<utt>.{m4a,mp4}. The OpenFace tree mirrors
it without the format folder: OPENFACE/{dev,test}/idXXXXX/<video>/<utt>.csv (or without the split
folder: OPENFACE/idXXXXX/<video>/<utt>.csv). dev becomes train plus a validation split of held-out
speakers; test stays test. Unusable utterances are listed in rejected.jsonl with the reason.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from cause_pl.features.mel import MelConfig
from cause_pl.media.audio import AudioError, load_audio
from cause_pl.openface.reader import AlignmentError, align_to_frames, read_openface_csv
from cause_pl.openface.table import OpenFaceError
from cause_pl.shards.encode import add_frontend_flags, encode_speech, frontend_config, log_mel, recipe_parser
from cause_pl.shards.schema import SPEECH_AU
from cause_pl.shards.writer import Processed, Rejected, plan_jobs, write_dataset

MEDIA_FORMATS = {"aac": ".m4a", "mp4": ".mp4"}


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
    for folder, suffix in MEDIA_FORMATS.items():
        base = media_root / split / folder
        if base.is_dir():
            break
    else:
        return []
    utterances = []
    for media in sorted(base.glob(f"*/*/*{suffix}")):
        relative = media.relative_to(base).with_suffix(".csv")
        csv = openface_root / split / relative
        if not csv.exists():
            csv = openface_root / relative
        speaker, video = relative.parts[0], relative.parts[1]
        utterances.append(Utterance(str(media), str(csv), speaker, video, media.stem))
    return utterances


def held_out_speakers(speakers: set[str], count: int) -> set[str]:
    """``count`` speakers chosen by a stable hash, so adding data never reshuffles the split."""
    ranked = sorted(speakers, key=lambda speaker: hashlib.sha1(speaker.encode()).hexdigest())
    return set(ranked[:count])


def process(config: MelConfig, args: argparse.Namespace, item: Utterance) -> Processed | Rejected:
    """Decode, compute the mel, align the OpenFace rows frame by frame, or say why not."""
    source = item.media
    if not Path(item.csv).is_file():
        return Rejected(source, f"no OpenFace CSV at {item.csv}")
    try:
        mel = log_mel(load_audio(item.media, config.sample_rate), config)
    except AudioError as error:
        return Rejected(source, f"undecodable audio: {error}")
    try:
        au, valid = align_to_frames(read_openface_csv(item.csv, min_confidence=args.min_confidence), len(mel))
    except AlignmentError as error:
        return Rejected(source, f"misaligned: {error}")
    except OpenFaceError as error:
        return Rejected(source, f"bad OpenFace CSV: {error}")
    if len(au) < args.min_frames:
        return Rejected(source, f"too short: {len(au)} frames < --min-frames {args.min_frames}")
    valid_fraction = float(np.mean(valid))
    if valid_fraction < args.min_valid:
        return Rejected(source, f"faceless: {valid_fraction:.0%} of frames have a tracked face (< --min-valid)")
    meta = {
        "speaker": item.speaker,
        "video": item.video,
        "utterance": item.utterance,
        "fps": config.fps,
        "sample_rate": config.sample_rate,
    }
    return encode_speech(item.key, mel, au, valid, meta)


def main() -> None:
    parser = recipe_parser(__doc__.splitlines()[0])
    parser.add_argument("--media", required=True, type=Path, help="VoxCeleb2 root holding dev/ and/or test/")
    parser.add_argument("--openface", required=True, type=Path, help="root of the OpenFace CSV tree")
    parser.add_argument(
        "--val-speakers", type=float, default=0.01, help="fraction (<1) or count of dev speakers held out"
    )
    parser.add_argument("--min-frames", type=int, default=25, help="shortest usable utterance in frames")
    parser.add_argument("--min-valid", type=float, default=0.5, help="least fraction of frames with a tracked face")
    parser.add_argument(
        "--min-confidence", type=float, default=0.7, help="OpenFace confidence below which frames are invalid"
    )
    add_frontend_flags(parser)
    args = parser.parse_args()
    config = frontend_config(args)

    dev = find_utterances(args.media, args.openface, "dev")
    test = find_utterances(args.media, args.openface, "test")
    if not dev and not test:
        raise SystemExit(f"no utterances under {args.media}/{{dev,test}}/{{aac,mp4}}/idXXXXX/<video>/")
    speakers = {item.speaker for item in dev}
    count = int(args.val_speakers) if args.val_speakers >= 1 else max(1, round(args.val_speakers * len(speakers)))
    val_speakers = held_out_speakers(speakers, count if len(speakers) > 1 else 0)
    items = {
        "train": [item for item in dev if item.speaker not in val_speakers],
        "val": [item for item in dev if item.speaker in val_speakers],
        "test": test,
    }
    index = write_dataset(
        args.out,
        SPEECH_AU,
        plan_jobs(SPEECH_AU, items, args.shard_size),
        partial(process, config, args),
        workers=args.workers,
        settings={key: getattr(args, key) for key in ("min_frames", "min_valid", "min_confidence")},
        frontend=config.to_dict(),
        desc="voxceleb2",
    )
    for split in index.splits:
        print(f"{split}: {index.num_samples(split)} utterances in {len(index.splits[split])} shards")
    rejected = sum(1 for _ in open(Path(args.out) / "rejected.jsonl"))
    print(f"rejected: {rejected} (see {Path(args.out) / 'rejected.jsonl'}); index: {index.root / 'index.json'}")


if __name__ == "__main__":
    main()
