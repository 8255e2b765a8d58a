"""Write the synthetic corpora as shards, exactly like the real-data recipes do.

Used by ``data_recipes/synthetic.py`` and by ``cause-pl demo``. Deterministic from the seed: the
same spec always gives byte-identical shards. Speech is split train/val/test by speaker and faces by
identity, so validation measures generalisation to unseen voices and faces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from cause_pl.au import AU_COLUMNS
from cause_pl.features.mel import MelConfig
from cause_pl.shards.encode import encode_face, encode_speech, log_mel
from cause_pl.shards.index import DatasetIndex
from cause_pl.shards.schema import FACES, SPEECH_AU
from cause_pl.shards.writer import Processed, plan_jobs, write_dataset
from cause_pl.synthetic.faces import synth_face
from cause_pl.synthetic.speech import synth_utterance
from cause_pl.synthetic.speech_aus import au_tracks_from_latents
from cause_pl.synthetic.speech_emotions import emotion_tracks_from_aus
from cause_pl.targets import TargetSpec, resolve_targets


@dataclass(frozen=True)
class SyntheticCorpusSpec:
    """Sizes of the synthetic corpora; the defaults build in well under a minute on a laptop."""

    seed: int = 0
    speakers: int = 12
    utterances_per_speaker: int = 20
    min_seconds: float = 2.0
    max_seconds: float = 6.0
    faces: int = 1500
    identities: int = 50
    face_size: int = 128
    shard_size: int = 10
    face_shard_size: int = 25
    frontend: MelConfig = field(default_factory=MelConfig)
    targets: str = "aus"
    """What both corpora's ``au.npy`` hold: a :data:`cause_pl.targets.PRESETS` name or AU columns
    (``AU12_r,AU25_r``): the 17 AUs, a subset, or ``emotions`` (FERPlus distributions)."""

    def __post_init__(self) -> None:
        blank = np.zeros((1, len(AU_COLUMNS)), np.float32)
        label_track(resolve_targets(self.targets), blank, lambda: blank)  # fails early for targets the corpora lack
        if self.speakers < 3:
            raise ValueError(f"speakers must be >= 3 (train, val and test each need one), got {self.speakers}")
        if self.identities < 3:
            raise ValueError(f"identities must be >= 3 (train, val and test each need one), got {self.identities}")


def split_of(position: int, count: int, held_out: int) -> str:
    """train for the first ``count - 2 * held_out`` positions, then ``held_out`` val, then test."""
    if position >= count - held_out:
        return "test"
    if position >= count - 2 * held_out:
        return "val"
    return "train"


def label_track(targets: TargetSpec, aus: np.ndarray, clean_aus: Callable[[], np.ndarray]) -> np.ndarray:
    """The per-frame ``targets`` of an AU track ``aus`` (F, 17): some of its columns, or the emotion
    distributions of the clean track (``clean_aus()``, before tracking failures). ValueError for
    targets the synthetic corpora do not have."""
    if targets.name == "emotions":
        return emotion_tracks_from_aus(clean_aus())
    if not targets.is_aus:
        raise ValueError(f"the synthetic corpora have AU and emotion labels, not {targets.name!r}")
    return aus[:, [AU_COLUMNS.index(column) for column in targets.columns]]


def _utterance(spec: SyntheticCorpusSpec, item: tuple[int, int]) -> Processed:
    speaker, index = item
    config = spec.frontend
    utterance = synth_utterance(
        speaker,
        index,
        seed=spec.seed,
        sample_rate=config.sample_rate,
        fps=config.fps,
        min_seconds=spec.min_seconds,
        max_seconds=spec.max_seconds,
    )
    meta = {
        "speaker": utterance.speaker,
        "video": f"synthetic{speaker:03d}",
        "utterance": utterance.key,
        "fps": config.fps,
        "sample_rate": config.sample_rate,
    }
    targets = resolve_targets(spec.targets)
    mel = log_mel(utterance.wave, config)
    labels = label_track(targets, utterance.aus, lambda: au_tracks_from_latents(utterance.latents))
    return encode_speech(utterance.key, mel, labels, utterance.valid, meta, targets)


def _face(spec: SyntheticCorpusSpec, index: int) -> Processed:
    face = synth_face(index, seed=spec.seed, size=spec.face_size, num_identities=spec.identities)
    targets = resolve_targets(spec.targets)
    labels = label_track(targets, face.aus[None], lambda: face.aus[None])[0]
    meta = {"image": face.key, "identity": face.identity_id}
    return encode_face(face.key, face.image, labels, meta, targets=targets)


def _settings(spec: SyntheticCorpusSpec) -> dict:
    settings = asdict(spec)
    settings.pop("frontend")
    if spec.targets == "aus":  # the default: folders written before targets existed resume as they were
        settings.pop("targets")
    return settings


def write_speech_corpus(out_dir: str | Path, spec: SyntheticCorpusSpec, workers: int = 1) -> DatasetIndex:
    """Synthetic ``speech_au`` shards (1/6 of the speakers each for val and test)."""
    held_out = max(1, spec.speakers // 6)
    items: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    for speaker in range(spec.speakers):
        split = split_of(speaker, spec.speakers, held_out)
        items[split].extend((speaker, index) for index in range(spec.utterances_per_speaker))
    return write_dataset(
        out_dir,
        SPEECH_AU,
        plan_jobs(SPEECH_AU, items, spec.shard_size),
        partial(_utterance, spec),
        workers=workers,
        settings=_settings(spec),
        frontend=spec.frontend.to_dict(),
        targets=None if spec.targets == "aus" else resolve_targets(spec.targets).to_dict(),
        desc=SPEECH_AU,
    )


def write_face_corpus(out_dir: str | Path, spec: SyntheticCorpusSpec, workers: int = 1) -> DatasetIndex:
    """Synthetic ``faces`` shards (1/10 of the identities each for val and test)."""
    held_out = max(1, spec.identities // 10)
    items: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index in range(spec.faces):
        items[split_of(index % spec.identities, spec.identities, held_out)].append(index)
    return write_dataset(
        out_dir,
        FACES,
        plan_jobs(FACES, items, spec.face_shard_size),
        partial(_face, spec),
        workers=workers,
        settings={**_settings(spec), "image_size": spec.face_size},
        targets=None if spec.targets == "aus" else resolve_targets(spec.targets).to_dict(),
        desc=FACES,
    )


def describe(index: DatasetIndex) -> str:
    """One line: what a shard directory holds."""
    counts = ", ".join(f"{split} {index.num_samples(split)}" for split in index.splits)
    shards = sum(len(shards) for shards in index.splits.values())
    return f"{index.kind}: {counts} samples in {shards} shards -> {index.root}"
