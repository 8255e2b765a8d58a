"""Training-loader throughput: SpeechAUDataModule vs plain webdataset, a per-file .npy Dataset and raw tar reading.

    .venv/bin/python benchmarks/loader.py --shards data/bench_shards --workers 2 --batch-size 32 --out loader.json

Rows, all on the train split of the same shards, with the same workers, batch size and crop:

- ``datamodule``: ``SpeechAUDataModule.train_dataloader()`` (resampled shards, shuffle buffer,
  decode, random crop, padded collate), samples/s over ``--batches`` batches after ``--warmup``.
- ``per_file_npy``: the same utterances exported once (to ``SHARDS-npy/``) as ``KEY.mel.npy``
  (float32), ``KEY.au.npy`` (float32) and ``KEY.mask.npy`` (bool), read by a plain ``Dataset``
  (``np.load`` per item, the same random crop, zero-padding of short utterances, tensors) and a
  ``DataLoader(shuffle=True)`` with default collate. Its sampler is a ``RandomSampler`` drawing as
  many items as the row needs (successive shuffles), so neither row restarts workers while timed.
- ``raw_tar_read``: every train shard file read fully (no parsing) by the same number of DataLoader
  workers: the ceiling for anything that reads these bytes, in samples/s and MB/s.
- ``plain_webdataset``: the same shards through the pipeline a user would write with plain
  webdataset (``webdataset_peer.py``: resampled shards, shuffle buffer, webdataset's decoding, the
  same crop and padding, batched in the workers): the real peer of the data module.

Each row is measured ``--repeats`` times in interleaved rounds (a, b, c, a, b, c, ...); medians are
reported, and a/b per round. The stage table (in-process, one thread) says where the data module's
time goes per sample: reading bytes, tar parsing, npy decoding, crop, collate.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; DataLoader workers inherit it

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
from webdataset_peer import crop_pad, plain_webdataset_loader

from cause_pl.data import SpeechAUDataModule
from cause_pl.data.reading import ReadErrors, read_shard
from cause_pl.shards.index import DatasetIndex
from cause_pl.shards.schema import decode_npy
from cause_pl.synthetic.corpus import SyntheticCorpusSpec, describe, write_speech_corpus

SPEAKERS = 12


def corpus(shards: Path, utterances: int, shard_size: int) -> DatasetIndex:
    """The shard directory, written as a synthetic corpus first if it holds no index.json."""
    if not (shards / "index.json").is_file():
        per_speaker = max(1, round(utterances / SPEAKERS))
        spec = SyntheticCorpusSpec(speakers=SPEAKERS, utterances_per_speaker=per_speaker, shard_size=shard_size)
        write_speech_corpus(shards, spec)
    return DatasetIndex.load(shards)


def export_npy(index: DatasetIndex, out: Path) -> list[Path]:
    """The train split as one ``.npy`` file per array per utterance (written once); returns the stems."""
    stems = []
    out.mkdir(exist_ok=True)
    for url in index.shard_paths("train"):
        for sample in read_shard(url, ReadErrors(strict=True)):
            stem = out / sample["__key__"]
            stems.append(stem)
            if not Path(f"{stem}.mask.npy").is_file():
                np.save(f"{stem}.mel.npy", decode_npy(sample["mel.npy"]).astype(np.float32))
                np.save(f"{stem}.au.npy", decode_npy(sample["au.npy"]).astype(np.float32))
                np.save(f"{stem}.mask.npy", decode_npy(sample["valid.npy"]).astype(bool))
    return stems


class NpyUtterances(Dataset):
    """The baseline as commonly written: load three .npy files, crop ``crop_frames`` at random, pad, tensors."""

    def __init__(self, stems: list[Path], crop_frames: int) -> None:
        self.stems = stems
        self.crop_frames = crop_frames

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        stem = self.stems[item]
        mel, au, mask = (np.load(f"{stem}.{name}.npy") for name in ("mel", "au", "mask"))
        return crop_pad(mel, au, mask, self.crop_frames)


class WholeFiles(Dataset):
    """Reads a file fully and returns its size: the raw-read ceiling."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int) -> int:
        with open(self.paths[item], "rb") as stream:
            return len(stream.read())


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {name: to_device(value, device) for name, value in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch


def timed(
    batches: Iterable[Any], warmup: int, count: int, device: torch.device, rows: Callable[[Any], int]
) -> tuple[float, int]:
    """Seconds and rows for ``count`` batches after ``warmup`` batches, each moved to ``device``."""
    iterator = iter(batches)
    for _ in range(warmup):
        to_device(next(iterator), device)
    started, total = time.perf_counter(), 0
    for _ in range(count):
        total += rows(to_device(next(iterator), device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started, total


def batch_rows(batch: dict) -> int:
    return len(batch["mel"])


def datamodule_rate(args: argparse.Namespace, device: torch.device) -> float:
    """(a) samples/s of the data module's training loader."""
    workers = max(args.workers, 1)
    batches = -(-(args.warmup + args.batches) // workers) * workers
    dm = SpeechAUDataModule(
        str(args.shards),
        batch_size=args.batch_size,
        crop_frames=args.crop_frames,
        num_workers=args.workers,
        train_samples_per_epoch=batches * args.batch_size,
        seed=random.randrange(2**31),
    )
    seconds, rows = timed(dm.train_dataloader(), args.warmup, args.batches, device, batch_rows)
    return rows / seconds


def baseline_rate(args: argparse.Namespace, stems: list[Path], device: torch.device) -> float:
    """(b) samples/s of the per-file .npy Dataset + DataLoader."""
    dataset = NpyUtterances(stems, args.crop_frames)
    sampler = RandomSampler(dataset, num_samples=(args.warmup + args.batches) * args.batch_size)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers)
    seconds, rows = timed(loader, args.warmup, args.batches, device, batch_rows)
    return rows / seconds


def webdataset_rate(args: argparse.Namespace, index: DatasetIndex, device: torch.device) -> float:
    """(d) samples/s of the plain-webdataset pipeline over the same train shards."""
    loader = plain_webdataset_loader(
        index.shard_paths("train"), args.workers, args.batch_size, args.crop_frames, random.randrange(2**31)
    )
    seconds, rows = timed(loader, args.warmup, args.batches, device, batch_rows)
    return rows / seconds


def raw_rate(args: argparse.Namespace, index: DatasetIndex) -> tuple[float, float]:
    """(c) samples/s and MB/s of reading the train shard files fully, repeated to last about as long."""
    paths = index.shard_paths("train")
    passes = max(1, -(-(args.warmup + args.batches) * args.batch_size // index.num_samples("train")))
    loader = DataLoader(WholeFiles(paths * (passes + 1)), batch_size=None, num_workers=args.workers)
    seconds, size = timed(loader, len(paths), len(paths) * passes, torch.device("cpu"), int)
    return index.num_samples("train") * passes / seconds, size / seconds / 1e6


def stage_table(args: argparse.Namespace, index: DatasetIndex) -> dict[str, float]:
    """Microseconds per sample of each loader stage, in this process (one thread), over the train split.

    Each stage runs on the previous stage's output; the best of ``--repeats`` passes after a warm-up
    pass is kept, since other processes on the machine only ever add time.
    """
    dm = SpeechAUDataModule(str(args.shards), batch_size=args.batch_size, crop_frames=args.crop_frames, num_workers=0)
    decode, crop, collate = dm.decoder(), dm.train_augmenter(), dm.train_collator()
    urls = index.shard_paths("train")
    rng = random.Random(0)

    def read_bytes() -> None:
        for url in urls:
            with open(url, "rb") as stream:
                stream.read()

    def parse() -> list[dict]:
        return [sample for url in urls for sample in read_shard(url, ReadErrors(strict=True))]

    def collate_all(samples: list[dict]) -> None:
        for first in range(0, len(samples) - args.batch_size + 1, args.batch_size):
            collate(samples[first : first + args.batch_size])

    raw = parse()
    decoded = [decode(sample) for sample in raw]
    cropped = [crop(sample, rng) for sample in decoded]
    stages = {
        "read file bytes": (read_bytes, len(raw)),
        "tar parse + group": (parse, len(raw)),
        "npy decode": (lambda: [decode(sample) for sample in raw], len(raw)),
        "random crop": (lambda: [crop(sample, rng) for sample in decoded], len(raw)),
        "collate": (lambda: collate_all(cropped), len(cropped) // args.batch_size * args.batch_size),
    }
    table = {}
    for stage, (run, samples) in stages.items():
        seconds = []
        for _ in range(args.repeats + 1):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        table[stage] = min(seconds[1:]) * 1e6 / samples
    table["tar parse + group"] -= table["read file bytes"]
    return table


def interleaved(repeats: int, rows: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    """``repeats`` rounds, each measuring every row once, so load changes on a shared machine hit every row alike."""
    runs: dict[str, list[Any]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, measure in rows.items():
            runs[name].append(measure())
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=Path, default=Path("data/bench_shards"), help="speech_au shard directory")
    parser.add_argument("--utterances", type=int, default=240, help="corpus size when --shards must be built")
    parser.add_argument("--shard-size", type=int, default=10, help="utterances per shard when building")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crop-frames", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=20, help="batches before timing starts")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per row; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the main process")
    parser.add_argument("--device", default="cpu", help="where batches are moved (cpu, cuda, ...)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    index = corpus(args.shards, args.utterances, args.shard_size)
    stems = export_npy(index, args.shards.with_name(args.shards.name + "-npy"))
    print(describe(index))
    print(
        f"workers {args.workers}, batch {args.batch_size}, crop {args.crop_frames} frames, {args.batches} timed "
        f"batches after {args.warmup} warm-up, median of {args.repeats} interleaved rounds, "
        f"torch threads {args.threads}, device {device}"
    )

    stages = stage_table(args, index)
    runs = interleaved(
        args.repeats,
        {
            "datamodule": lambda: datamodule_rate(args, device),
            "per_file_npy": lambda: baseline_rate(args, stems, device),
            "raw_tar_read": lambda: raw_rate(args, index),
            "plain_webdataset": lambda: webdataset_rate(args, index, device),
        },
    )
    webdataset = statistics.median(runs["plain_webdataset"])
    datamodule, baseline = statistics.median(runs["datamodule"]), statistics.median(runs["per_file_npy"])
    raw = statistics.median(rate for rate, _ in runs["raw_tar_read"])
    megabytes = statistics.median(speed for _, speed in runs["raw_tar_read"])
    ratios = {
        "a/b": datamodule / baseline,
        "c/a": raw / datamodule,
        "a/d": datamodule / webdataset,
        "a/b per round": [a / b for a, b in zip(runs["datamodule"], runs["per_file_npy"], strict=True)],
    }

    print(f"(a) datamodule     {datamodule:9.0f} samples/s   runs {[round(r) for r in runs['datamodule']]}")
    print(f"(b) per_file_npy   {baseline:9.0f} samples/s   runs {[round(r) for r in runs['per_file_npy']]}")
    print(f"(c) raw_tar_read   {raw:9.0f} samples/s   {megabytes:.0f} MB/s")
    print(f"(d) plain_webdataset {webdataset:7.0f} samples/s   runs {[round(r) for r in runs['plain_webdataset']]}")
    print(f"a/d = {ratios['a/d']:.2f}  data module vs the plain-webdataset pipeline on the same shards")
    print(
        f"a/b = {ratios['a/b']:.2f}  data module vs per-file baseline (acceptance bar: >= 3); "
        f"per round {[round(r, 2) for r in ratios['a/b per round']]}"
    )
    print(f"c/a = {ratios['c/a']:.2f}  raw read ceiling vs data module")
    print("data module stages, microseconds per sample (in-process, 1 thread, best pass):")
    for stage, micro in stages.items():
        print(f"  {stage:18s} {micro:7.1f}")
    if args.out:
        payload = {
            "settings": {name: str(value) for name, value in vars(args).items()},
            "samples_per_s": {
                "datamodule": datamodule,
                "per_file_npy": baseline,
                "raw_tar_read": raw,
                "plain_webdataset": webdataset,
            },
            "raw_tar_read_mb_per_s": megabytes,
            "ratios": ratios,
            "runs": runs,
            "stage_us_per_sample": stages,
        }
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
