"""``cause-pl stream``: live AU rows from a file or a raw PCM pipe, each written as soon as it is determined."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from cause_pl.cli.command import UsageError, command_parser, require_file
from cause_pl.inference.live import (
    LiveRun,
    TimedFrame,
    file_chunks,
    latency_summary,
    pipe_chunks,
    timed_chunks,
)
from cause_pl.inference.streaming import StreamingEstimator
from cause_pl.models.cause import load_cause_checkpoint

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), once the rows so far and the summary are out."""


def stream(
    audio: str | None = None,
    *,
    ckpt: Path,
    stdin: bool = False,
    rate: int = 16000,
    pcm: Literal["s16le", "f32le"] = "s16le",
    realtime: bool = False,
    chunk_ms: float = 10.0,
    format: Literal["csv", "jsonl"] = "csv",
) -> int:
    """Live AU estimation: each AU frame on stdout as soon as the audio after it arrives.

    Reads an audio file (any format `estimate` reads) or raw mono PCM from stdin, e.g.
    `ffmpeg -i IN -ac 1 -ar 16000 -f s16le - | cause-pl stream --stdin --ckpt C`, and writes one row
    per frame (frame from 0, timestamp = frame / fps s, latency_ms = when the row was written minus
    when the audio at its timestamp was captured, then the AUs), flushed at once. Needs a net with finite
    context (not the rnn). A summary line (latencies, real-time factor) goes to stderr at the end.

    Args:
        audio: audio or video file, or - for raw PCM on stdin (same as --stdin); also --audio
        ckpt: CAUSE checkpoint (.ckpt)
        stdin: read raw mono PCM (--pcm) at --rate Hz from stdin
        rate: sample rate of the stdin PCM; must be the model's (resample with ffmpeg -ar)
        pcm: stdin sample format: s16le (16-bit signed) or f32le (32-bit float, full scale 1)
        realtime: release the file's chunks at real-time pace, as a live source would
        chunk_ms: milliseconds of audio per chunk fed to the model (per read from stdin)
        format: csv (with a header) or jsonl (one JSON object per frame)
    """
    from_stdin = stdin or audio == "-"
    if from_stdin and audio not in (None, "-"):
        raise UsageError(f"give an audio file or --stdin, not both (got {audio} and --stdin)")
    if audio is None and not from_stdin:
        raise UsageError("give an audio file, or --stdin (or -) for raw PCM on stdin")
    if not chunk_ms > 0:
        raise UsageError(f"--chunk_ms must be > 0, got {chunk_ms}")
    if from_stdin and realtime:
        raise UsageError("--realtime paces a file; stdin is read as it arrives (pace a file with ffmpeg -re)")
    require_file(ckpt, "--ckpt")
    path = None if from_stdin else require_file(Path(str(audio)), "audio")
    estimator, columns = streaming_estimator(ckpt, "stdin" if path is None else path)
    layout = estimator.layout
    if from_stdin and rate != layout.sample_rate:
        raise UsageError(
            f"--rate {rate}: {ckpt} takes {layout.sample_rate} Hz PCM; resample the input, "
            f"e.g. ffmpeg -i IN -ac 1 -ar {layout.sample_rate} -f {pcm} -"
        )
    chunk = max(1, round(chunk_ms * layout.sample_rate / 1000))
    pcm_chunks = (
        pipe_chunks(sys.stdin.buffer.fileno(), pcm, chunk)
        if path is None
        else file_chunks(path, layout.sample_rate, chunk)
    )
    run = LiveRun(estimator)
    latencies: list[float] = []
    try:
        frames = run.frames(timed_chunks(pcm_chunks, layout.sample_rate, realtime))
        write_rows(frames, estimator.layout.fps, columns, format, latencies)
    except BrokenPipeError:  # the reader stopped (e.g. `| head`): end quietly, as a Unix filter does
        silence_stdout()
        return 0
    except KeyboardInterrupt:
        report(run, latencies, "stdin" if path is None else path, interrupted=True)
        return EXIT_INTERRUPTED
    report(run, latencies, "stdin" if path is None else path)
    return 0


def streaming_estimator(ckpt: Path, source: str | Path) -> tuple[StreamingEstimator, tuple[str, ...]]:
    """The checkpoint's model as a warmed-up streaming estimator, and its output columns (``AU01_r``, ...,
    or the names of its other targets); a net that cannot stream is a ValueError."""
    model = load_cause_checkpoint(ckpt)
    try:
        estimator = StreamingEstimator.for_model(model, source=source)
    except ValueError as error:
        raise ValueError(f"{ckpt}: {error}") from error
    layout = estimator.layout  # warm up: torch's first calls are slow and would show as latency
    StreamingEstimator(estimator.step, layout).push(np.zeros(layout.n_fft + 2 * layout.hop, np.float32))
    return estimator, model.targets.columns


def write_rows(
    frames: Iterable[TimedFrame], fps: int, columns: Sequence[str], format: str, latencies: list[float]
) -> None:
    """Write each frame to stdout as CSV or JSON lines, flushed, appending its emission latency to ``latencies``."""
    out = sys.stdout
    if format == "csv":
        out.write(",".join(("frame", "timestamp", "latency_ms", *columns)) + "\n")
        out.flush()
    for frame in frames:
        latency = 1000.0 * (time.perf_counter() - frame.arrival)
        out.write(format_row(frame, fps, latency, columns, format) + "\n")
        out.flush()
        latencies.append(latency)


def format_row(frame: TimedFrame, fps: int, latency_ms: float, columns: Sequence[str], format: str) -> str:
    """One output line (no newline): AUs with 3 decimals as in OpenFace CSVs, latency with 1."""
    values = [float(value) for value in frame.aus]
    if format == "jsonl":
        cells = {"frame": frame.index, "timestamp": round(frame.index / fps, 3), "latency_ms": round(latency_ms, 1)}
        return json.dumps(cells | {name: round(value, 3) for name, value in zip(columns, values, strict=True)})
    return ",".join([str(frame.index), f"{frame.index / fps:.3f}", f"{latency_ms:.1f}", *(f"{v:.3f}" for v in values)])


def report(run: LiveRun, latencies: list[float], source: str | Path, interrupted: bool = False) -> None:
    """The summary line on stderr."""
    median, p95 = latency_summary(latencies)
    seconds = run.audio_seconds
    note = " (interrupted)" if interrupted else ""
    print(
        f"{source}{note}: {len(latencies)} frames, {seconds:.2f} s of audio; algorithmic latency "
        f"{run.estimator.latency_ms:.0f} ms, emission latency median {median:.1f} ms, p95 {p95:.1f} ms; "
        f"real-time factor {run.compute_seconds / max(seconds, 1e-9):.4f}",
        file=sys.stderr,
        flush=True,
    )


def silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def audio_as_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` with a bare AUDIO positional spelled ``--audio AUDIO`` (the parser has no optional positionals)."""
    actions = command_parser(stream)._option_string_actions  # argparse's table of every option string
    argv, index = list(argv), 0
    out: list[str] = []
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return [*out, *argv[index:]]
        action = actions.get(token) if token.startswith("--") and "=" not in token else None
        takes = 0 if action is None else _values_taken(action.nargs, argv[index + 1 : index + 2])
        if action is None and (token == "-" or not token.startswith("-")) and "--audio" not in out:
            out += ["--audio", token]
        else:
            out += argv[index : index + 1 + takes]
        index += 1 + takes
    return out


def _values_taken(nargs: int | str | None, following: list[str]) -> int:
    if nargs == 0:
        return 0
    if nargs == "?":  # a bool flag: a value only when one follows
        return int(bool(following) and following[0].lower() in ("true", "false"))
    return 1
