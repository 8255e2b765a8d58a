"""The ``cause-pl`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from cause_pl.shards import FACES, SPEECH_AU


def demo(argv: Sequence[str]) -> int:
    """The main job on built-in synthetic data (grows with the training issues)."""
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


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``cause-pl COMMAND ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(f"usage: cause-pl {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
