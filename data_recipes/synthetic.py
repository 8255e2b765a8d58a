"""The synthetic corpora as shards: ``.venv/bin/python data_recipes/synthetic.py --out DIR`` (see ``--help``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from cause_pl.cli.command import UsageError, run_as_command
from cause_pl.features.mel import MelConfig
from cause_pl.shards.encode import DEFAULT_WORKERS
from cause_pl.shards.schema import FACES, SPEECH_AU
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, describe, write_face_corpus, write_speech_corpus

DEFAULTS = SyntheticCorpusSpec()


def synthetic(
    *,
    out: Path,
    workers: int = DEFAULT_WORKERS,
    shard_size: int = DEFAULTS.shard_size,
    face_shard_size: int = DEFAULTS.face_shard_size,
    seed: int = DEFAULTS.seed,
    speakers: int = DEFAULTS.speakers,
    utterances: int = DEFAULTS.utterances_per_speaker,
    min_seconds: float = DEFAULTS.min_seconds,
    max_seconds: float = DEFAULTS.max_seconds,
    faces: int = DEFAULTS.faces,
    identities: int = DEFAULTS.identities,
    face_size: int = DEFAULTS.face_size,
    only: Literal["speech_au", "faces"] | None = None,
    frontend: MelConfig = DEFAULTS.frontend,
    targets: str = DEFAULTS.targets,
) -> int:
    """Write both synthetic corpora (speech+AU, faces+AU) as shards into OUT/speech_au/ and OUT/faces/.

    Exact ground truth, deterministic from --seed; see cause_pl.synthetic.speech for how the data is made.

    Args:
        out: output directory; the corpora go to OUT/speech_au/ and OUT/faces/
        workers: parallel processes
        shard_size: utterances per shard
        face_shard_size: faces per shard
        seed: seed of everything generated
        speakers: speakers; 1/6 each held out for val and test
        utterances: utterances per speaker
        min_seconds: shortest utterance in seconds
        max_seconds: longest utterance in seconds
        faces: face images
        identities: face identities; 1/10 each for val and test
        face_size: face image side in pixels
        only: write one corpus only (speech_au or faces)
        frontend: mel frontend of the speech corpus
        targets: the labels of both corpora: aus (17), disfa (12 AUs), fera (5 AUs), emotions (8 FERPlus
            class distributions, the paper's CME baseline) or AU columns, e.g. AU12_r,AU25_r
    """
    try:
        spec = SyntheticCorpusSpec(
            seed=seed,
            speakers=speakers,
            utterances_per_speaker=utterances,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            faces=faces,
            identities=identities,
            face_size=face_size,
            shard_size=shard_size,
            face_shard_size=face_shard_size,
            frontend=frontend,
            targets=targets,
        )
    except ValueError as error:
        raise UsageError(str(error)) from error
    if only != FACES:
        print(describe(write_speech_corpus(out / SPEECH_AU, spec, workers=workers)))
    if only != SPEECH_AU:
        print(describe(write_face_corpus(out / FACES, spec, workers=workers)))
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(synthetic))
