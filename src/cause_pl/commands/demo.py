"""``cause-pl demo``: the main job on built-in synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from cause_pl.shards import FACES, SPEECH_AU


def demo(argv: Sequence[str]) -> int:
    """Build the synthetic corpora (training and rendering follow in later stages of the demo)."""
    from cause_pl.synthetic_corpus import SyntheticCorpusSpec, describe, write_face_corpus, write_speech_corpus

    parser = argparse.ArgumentParser(prog="cause-pl demo", description=demo.__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="folder for everything the demo makes")
    parser.add_argument("--workers", type=int, default=2, help="processes for building the corpora")
    args = parser.parse_args(argv)
    spec = SyntheticCorpusSpec()
    data = args.out / "data"
    made = [
        write_speech_corpus(data / SPEECH_AU, spec, workers=args.workers),
        write_face_corpus(data / FACES, spec, workers=args.workers),
    ]
    print("\nThe demo made:")
    for index in made:
        print(f"  {describe(index)}")
    return 0
