"""VoxCeleb2 recipe throughput per worker: ``process()`` on real AAC m4a + OpenFace CSVs vs decoding alone.

    .venv/bin/python benchmarks/recipe.py                       # 24 utterances of 8 s, 16 kHz AAC
    .venv/bin/python benchmarks/recipe.py --source-rate 44100   # m4a at 44.1 kHz: resampling included

Builds a VoxCeleb2-shaped tree (media/dev/aac/idXXXXX/<video>/<utt>.m4a and matching OpenFace
FeatureExtraction CSVs of OpenFace's full width, via tests/builders) in a temporary folder, then
times in this process, with one thread and repeats taken round-robin: the recipe's per-item
``process`` (decode, resample, mel, CSV, alignment, encoding) and each of its stages alone;
``load_audio`` (decode + resample) is the floor. Rates are seconds of audio per second of one
worker; CPU seconds (``time.process_time``, all threads) per second of audio show the cost per core.
A cProfile of ``process`` says where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import harness  # first: pins OMP threads before torch is imported
import numpy as np
import torch

sys.path[:0] = [str(harness.REPO_ROOT), str(harness.REPO_ROOT / "data_recipes")]

import talking_heads  # noqa: E402  (data_recipes/talking_heads.py: the per-item process of voxceleb2.py)
import voxceleb2  # noqa: E402  (data_recipes/voxceleb2.py)
from tests.builders.media import tone, write_m4a  # noqa: E402
from tests.builders.openface_csv import CsvTable, video_table  # noqa: E402

from cause_pl.au import NUM_AUS  # noqa: E402
from cause_pl.features.mel import MelConfig  # noqa: E402
from cause_pl.media.audio import load_audio  # noqa: E402
from cause_pl.openface.reader import align_to_frames, read_openface_csv  # noqa: E402
from cause_pl.shards.encode import encode_speech, log_mel  # noqa: E402
from cause_pl.shards.writer import Processed  # noqa: E402

OPENFACE_EXTRA_COLUMNS: tuple[str, ...] = (
    *(f"eye_lmk_{axis}_{i}" for axis in "xy" for i in range(56)),
    *(f"eye_lmk_{axis}_{i}" for axis in "XYZ" for i in range(56)),
    *(f"{axis}_{i}" for axis in "XYZ" for i in range(68)),
    "p_scale",
    "p_rx",
    "p_ry",
    "p_rz",
    "p_tx",
    "p_ty",
    *(f"p_{i}" for i in range(34)),
)
"""Columns OpenFace 2.2 FeatureExtraction writes beyond tests/builders' (eye and 3-D landmarks, shape
parameters): with them a CSV has OpenFace's full 714 columns, so parsing costs what it costs on real data."""
RECIPE_SETTINGS = voxceleb2.Thresholds()
"""data_recipes/voxceleb2.py's defaults for the flags ``process`` reads."""
COLUMNS = ("stage", "seconds", "audio s/s", "vs decode", "CPU s per audio s")


def speech_like(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """A few harmonics with a wandering amplitude plus noise: AAC must spend bits on it, as on speech."""
    rng = np.random.default_rng(seed)
    pitch = rng.uniform(90, 250)
    wave = sum(tone(seconds, sample_rate, freq=pitch * k, amplitude=0.2 / k)[:, 0] for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * np.arange(len(wave)) / sample_rate)
    noise = rng.normal(0, 0.02, len(wave))
    return (wave * envelope + noise).astype(np.float32)


def build_tree(root: Path, count: int, seconds: float, source_rate: int, fps: int) -> list[voxceleb2.Utterance]:
    """``count`` m4a utterances with OpenFace CSVs of ``seconds * fps`` rows, as the recipe finds them."""
    for index in range(count):
        speaker, video, utterance = f"id{index // 4:05d}", f"vid{index % 4}", f"{index:05d}"
        write_m4a(
            root / "media" / "dev" / "aac" / speaker / video / f"{utterance}.m4a",
            speech_like(seconds, source_rate, index),
            source_rate,
        )
        rng = np.random.default_rng(index)
        aus = np.clip(np.cumsum(rng.normal(0, 0.1, (round(seconds * fps), NUM_AUS)), axis=0) + 1, 0, 5)
        table = with_all_openface_columns(video_table(aus.round(2), fps=fps), rng)
        table.write(root / "openface" / "dev" / speaker / video / f"{utterance}.csv")
    return voxceleb2.find_utterances(root / "media", root / "openface", "dev")


def with_all_openface_columns(table: CsvTable, rng: np.random.Generator) -> CsvTable:
    """``table`` widened by ``OPENFACE_EXTRA_COLUMNS`` (plausible pixel/mm values, one decimal)."""
    values = rng.uniform(-300, 600, (len(table.rows), len(OPENFACE_EXTRA_COLUMNS))).round(1)
    extra = [[repr(float(value)) for value in row] for row in values]
    at = table.header.index("AU01_r")
    return CsvTable(
        [*table.header[:at], *OPENFACE_EXTRA_COLUMNS, *table.header[at:]],
        [[*row[:at], *cells, *row[at:]] for row, cells in zip(table.rows, extra, strict=True)],
    )


def stage_runners(items: list[voxceleb2.Utterance], config: MelConfig) -> dict[str, Callable[[], list]]:
    """Each stage of ``process`` alone over all items, on inputs computed beforehand."""
    waves = [load_audio(item.media, config.sample_rate) for item in items]
    mels = [log_mel(wave, config) for wave in waves]
    tracks = [read_openface_csv(item.csv, min_confidence=RECIPE_SETTINGS.min_confidence) for item in items]
    aligned = [align_to_frames(track, len(mel)) for track, mel in zip(tracks, mels, strict=True)]
    meta = {"speaker": "id", "video": "v", "utterance": "u", "fps": config.fps, "sample_rate": config.sample_rate}
    return {
        "decode + resample (load_audio)": lambda: [load_audio(item.media, config.sample_rate) for item in items],
        "log-mel": lambda: [log_mel(wave, config) for wave in waves],
        "OpenFace CSV": lambda: [
            read_openface_csv(item.csv, min_confidence=RECIPE_SETTINGS.min_confidence) for item in items
        ],
        "alignment": lambda: [align_to_frames(track, len(mel)) for track, mel in zip(tracks, mels, strict=True)],
        "encoding": lambda: [
            encode_speech(item.key, mel, au, valid, meta)
            for item, mel, (au, valid) in zip(items, mels, aligned, strict=True)
        ],
    }


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, all threads) of one call of ``run``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def stage_row(stage: str, times: list[tuple[float, float]], audio_seconds: float) -> dict[str, Any]:
    """A table row from the (wall, CPU) seconds of each repeat: medians, as rates per audio second."""
    walls = [wall for wall, _ in times]
    return {
        "stage": stage,
        "seconds": harness.median(walls),
        "all seconds": walls,
        "audio s/s": audio_seconds / harness.median(walls),
        "CPU s per audio s": harness.median([cpu for _, cpu in times]) / audio_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_flags(parser, device=False)
    parser.add_argument("--count", type=int, default=24, help="utterances")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each utterance")
    parser.add_argument(
        "--source-rate",
        type=int,
        default=16000,
        help="sample rate of the m4a files (VoxCeleb2's AAC is 16 kHz: no resampling)",
    )
    parser.add_argument("--profile-top", type=int, default=15, help="functions to list from cProfile (0: none)")
    args = parser.parse_args()
    harness.setup(args)
    config = MelConfig()
    process = partial(talking_heads.process, config, RECIPE_SETTINGS)

    with tempfile.TemporaryDirectory(prefix="recipe-bench-") as folder:
        items = build_tree(Path(folder), args.count, args.seconds, args.source_rate, config.fps)
        audio_seconds = len(items) * args.seconds
        outcomes = [process(item) for item in items]  # warm-up, and a check that nothing is rejected
        rejected = [outcome for outcome in outcomes if not isinstance(outcome, Processed)]
        if rejected:
            raise SystemExit(f"the benchmark's own utterances were rejected: {rejected[:3]}")
        print(
            f"VoxCeleb2 recipe: {len(items)} AAC m4a utterances of {args.seconds:g} s at "
            f"{args.source_rate} Hz -> {config.sample_rate} Hz, {torch.get_num_threads()} thread(s); "
            f"medians of {args.repeats}"
        )
        runners = {"process() (whole item)": lambda: [process(item) for item in items], **stage_runners(items, config)}
        seconds: dict[str, list[tuple[float, float]]] = {stage: [] for stage in runners}
        for _ in range(args.repeats):  # round-robin, so that other users' load hits every stage alike
            for stage, run in runners.items():
                seconds[stage].append(timed(run))
        rows = [stage_row(stage, times, audio_seconds) for stage, times in seconds.items()]
        harness.print_header(COLUMNS)
        floor = next(row for row in rows if row["stage"].startswith("decode"))
        for row in rows:
            row["vs decode"] = row["audio s/s"] / floor["audio s/s"]
            harness.print_row(COLUMNS, row)
        stages_total = sum(row["seconds"] for row in rows[1:])
        print(
            f"process() reaches {rows[0]['vs decode']:.2f}x the decode floor; the stages alone add up to "
            f"{stages_total:.3f} s of its {rows[0]['seconds']:.3f} s"
        )
        functions = []
        if args.profile_top:
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [process(item) for item in items])
            functions = harness.top_functions(profiler, args.profile_top)
            harness.print_top_functions(
                f"cProfile of process() over {len(items)} items, by cumulative time:", functions
            )
    harness.save(args.out, args, settings=vars(args), audio_seconds=audio_seconds, rows=rows, process_profile=functions)


if __name__ == "__main__":
    main()
