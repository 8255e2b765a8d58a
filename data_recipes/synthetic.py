"""Write both synthetic corpora (speech+AU, faces+AU) as shards into OUT/speech_au/ and OUT/faces/.

Exact ground truth, deterministic from --seed; see cause_pl.synthetic.speech for how the data is made.
"""

from __future__ import annotations

from pathlib import Path

from cause_pl.shards.encode import add_frontend_flags, frontend_config, recipe_parser
from cause_pl.shards.schema import FACES, SPEECH_AU
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, describe, write_face_corpus, write_speech_corpus


def main() -> None:
    defaults = SyntheticCorpusSpec()
    parser = recipe_parser(__doc__.splitlines()[0])
    parser.set_defaults(shard_size=defaults.shard_size)
    parser.add_argument("--face-shard-size", type=int, default=defaults.face_shard_size, help="faces per shard")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--speakers", type=int, default=defaults.speakers, help="1/6 each held out for val and test")
    parser.add_argument("--utterances", type=int, default=defaults.utterances_per_speaker, help="per speaker")
    parser.add_argument("--min-seconds", type=float, default=defaults.min_seconds)
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    parser.add_argument("--faces", type=int, default=defaults.faces, help="face images")
    parser.add_argument("--identities", type=int, default=defaults.identities, help="1/10 each for val and test")
    parser.add_argument("--face-size", type=int, default=defaults.face_size, help="image side in pixels")
    parser.add_argument("--only", choices=[SPEECH_AU, FACES], help="write one corpus only")
    add_frontend_flags(parser)
    args = parser.parse_args()
    try:
        spec = SyntheticCorpusSpec(
            seed=args.seed,
            speakers=args.speakers,
            utterances_per_speaker=args.utterances,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            faces=args.faces,
            identities=args.identities,
            face_size=args.face_size,
            shard_size=args.shard_size,
            face_shard_size=args.face_shard_size,
            frontend=frontend_config(args),
        )
    except ValueError as error:
        parser.error(str(error))
    out = Path(args.out)
    if args.only != FACES:
        print(describe(write_speech_corpus(out / SPEECH_AU, spec, workers=args.workers)))
    if args.only != SPEECH_AU:
        print(describe(write_face_corpus(out / FACES, spec, workers=args.workers)))


if __name__ == "__main__":
    main()
