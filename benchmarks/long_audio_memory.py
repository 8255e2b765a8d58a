"""Peak memory of AU estimation on a 2-hour 48 kHz stereo file: streamed (ours) vs decoded whole (the peer).

    .venv/bin/python benchmarks/long_audio_memory.py                    # 2 h WAV and 2 h m4a (AAC)
    .venv/bin/python benchmarks/long_audio_memory.py --hours 0.5 --formats wav

Writes the files block by block into --work (kept for re-runs; ~1.4 GB for the WAV), then runs each
way in its own process, which reports its peak resident memory (``VmHWM`` in /proc/self/status, the
high-water mark of its own address space; ``ru_maxrss`` would include the parent's memory at fork):
- ``floor``: Python, torch and a CNN CAUSE model loaded, nothing estimated;
- ``cause_pl.estimate_file``: what ``cause-pl estimate`` runs, audio streamed block by block, then the
  OpenFace-style CSV written;
- ``decode whole + resample``: the usual approach (read the whole file, average the channels,
  ``torchaudio.functional.resample`` once, then estimate), i.e. cause-pl before streaming and what
  ``torchaudio.load`` / ``librosa.load`` users do; its CSV is compared with ours.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import harness  # first: pins OMP threads before torch is imported
import numpy as np

MODES = ("floor", "cause_pl.estimate_file", "decode whole + resample")
COLUMNS = ("format", "way", "peak RSS MiB", "seconds", "AU frames")
RATE = 48000


def signal_block(start: int, count: int) -> np.ndarray:
    """``count`` stereo frames from sample ``start`` of a syllable-rate amplitude-modulated tone plus noise."""
    time_s = (start + np.arange(count)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * time_s)
    left = 0.3 * envelope * np.sin(2 * np.pi * 220.0 * time_s)
    noise = np.random.default_rng(start).normal(0.0, 0.01, count)
    return np.stack([left + noise, 0.8 * left - noise], axis=1).astype(np.float32)


def write_long_file(path: Path, seconds: float) -> Path:
    """A stereo 48 kHz WAV (16-bit) or m4a (AAC), written one minute at a time; reused when present."""
    if path.exists():
        return path
    import av
    import soundfile as sf

    total, step = int(seconds * RATE), 60 * RATE
    partial = path.with_name(f".{path.name}.partial")
    if path.suffix == ".wav":
        with sf.SoundFile(partial, "w", RATE, 2, subtype="PCM_16", format="WAV") as handle:
            for start in range(0, total, step):
                handle.write(signal_block(start, min(step, total - start)))
    else:
        with av.open(str(partial), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=RATE, layout="stereo")
            stream.bit_rate = 96_000
            for start in range(0, total, step):
                block = signal_block(start, min(step, total - start)).T.copy()
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate = RATE
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    partial.rename(path)
    return path


def decode_whole(audio: Path) -> tuple[np.ndarray, int]:
    """All samples ``(channels, n)`` float32 and the rate: soundfile for WAV, PyAV for the rest."""
    import av
    import soundfile as sf

    if audio.suffix == ".wav":
        data, rate = sf.read(str(audio), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), rate
    with av.open(str(audio)) as container:
        to_float_planar = av.AudioResampler(format="fltp")
        chunks = [out.to_ndarray() for frame in container.decode(audio=0) for out in to_float_planar.resample(frame)]
        return np.concatenate(chunks, axis=1), container.streams.audio[0].rate


def child(mode: str, audio: Path, out: Path) -> None:
    """One way, in this process (the parent measures it)."""
    sys.path.insert(0, str(harness.REPO_ROOT / "benchmarks"))
    from cause import build_model

    from cause_pl.inference.estimate import estimate_aus, estimate_file
    from cause_pl.openface.writer import write_openface_style_csv

    model = build_model("cnn").eval()
    fps = model.frontend_config.fps
    if mode == "floor":
        pass
    elif mode == "cause_pl.estimate_file":
        aus, _ = estimate_file(model, audio)
    else:
        import torch
        import torchaudio

        channels, native = decode_whole(audio)
        wave = torch.from_numpy(channels.mean(axis=0, dtype=np.float32))
        del channels
        wave = torchaudio.functional.resample(wave, native, model.frontend_config.sample_rate)
        aus = estimate_aus(model, wave).numpy()
    if mode != "floor":
        write_openface_style_csv(aus, fps, out)
    report_peak()


def report_peak() -> None:
    """Print this process's peak resident memory in KiB for the parent to read."""
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    print(f"peak_kib {peak}")


def measure(mode: str, audio: Path, out: Path) -> dict[str, float]:
    """Peak RSS (MiB) and wall seconds of ``child(mode)`` in a fresh process."""
    command = [sys.executable, __file__, "--child", mode, "--audio", str(audio), "--csv", str(out)]
    started = time.perf_counter()
    finished = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"{mode} on {audio} failed with exit code {finished.returncode}")
    peak_kib = int(finished.stdout.split("peak_kib")[-1])
    return {"peak RSS MiB": peak_kib / 1024, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--formats", nargs="+", choices=("wav", "m4a"), default=["wav", "m4a"])
    parser.add_argument("--work", type=Path, default=Path("data/long_audio"), help="where the long files are kept")
    parser.add_argument("--out", type=Path, help="also save the rows and the machine as JSON here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.audio, args.csv)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    harness.print_header(COLUMNS)
    rows = []
    for suffix in args.formats:
        audio = write_long_file(args.work / f"speech_{args.hours:g}h_48k.{suffix}", args.hours * 3600)
        outputs = {}
        for mode in MODES:
            outputs[mode] = args.work / f"aus_{suffix}_{MODES.index(mode)}.csv"
            row = {"format": suffix, "way": mode, **measure(mode, audio, outputs[mode])}
            if mode != "floor":
                row["AU frames"] = len(outputs[mode].read_text().splitlines()) - 1
            harness.print_row(COLUMNS, row)
            rows.append(row)
        streamed, whole = (np.loadtxt(outputs[mode], delimiter=",", skiprows=1) for mode in MODES[1:])
        common = min(len(streamed), len(whole))  # AAC: the peer keeps the encoder's padding (one frame more)
        difference = np.abs(streamed[:common] - whole[:common]).max()
        print(f"{suffix}: {len(streamed)} vs {len(whole)} AU frames; largest difference {difference:.4f}")
    harness.save(args.out, args, rows=rows)


if __name__ == "__main__":
    main()
