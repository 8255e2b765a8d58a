"""Live AU estimation with onnxruntime alone: a WAV file fed 10 ms at a time through ``cause_streaming.onnx``.

    cause-pl export --ckpt cause_cnn.ckpt --out onnx/
    python experiments/onnx/stream_with_onnxruntime.py onnx/cause_streaming.onnx speech.wav > aus.csv

Needs only numpy, soundfile and onnxruntime. The model's metadata holds the layout (sample rate, hop,
n_fft, ...). As ``cause_pl.inference.streaming.StreamingEstimator`` does, PCM is buffered into hops
behind the layout's prefix_samples zeros (the first frame is centred on sample 0), the step runs once per hop
and emits a frame once its look-ahead has arrived, and the end of the file is flushed with zero
samples and ``frame_valid`` = 0. Prints ``frame,timestamp,AU01_r,...`` rows as frames become final.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime
import soundfile

CHUNK_MS = 10
INPUTS = ("chunk", "samples", "mel", "valid", "frame_valid")
OUTPUTS = ("aus", "emitted_valid", "samples_out", "mel_out", "valid_out")


class Stream:
    """The step's state and the samples not yet stepped over; ``push`` and ``finish`` return final frames."""

    def __init__(self, session: onnxruntime.InferenceSession, layout: dict) -> None:
        self.session, self.hop, self.carry = session, int(layout["hop"]), int(layout["carry_samples"])
        shapes = {value.name: value.shape for value in session.get_inputs()}
        self.buffer = np.zeros(int(layout["prefix_samples"]), np.float32)  # the centred first frame's zero padding
        self.samples: np.ndarray | None = None  # the first `carry` padded samples, once they arrived
        self.mel = np.zeros(shapes["mel"], np.float32)
        self.valid = np.zeros(shapes["valid"], np.float32)
        self.received = self.frames_in = self.emitted = 0

    def push(self, pcm: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self.received += len(pcm)
        self.buffer = np.concatenate([self.buffer, pcm.astype(np.float32)])
        rows = []
        while self._ready(pad=False) and len(self.buffer) >= self.hop:
            rows += self._step(self._take(self.hop), frame_valid=True)
        return rows

    def finish(self) -> list[tuple[int, np.ndarray]]:
        total = 1 + self.received // self.hop  # frames of the whole signal
        self._ready(pad=True)
        rows = []
        while self.emitted < total:
            rows += self._step(self._take(self.hop), frame_valid=self.frames_in < total)
        return rows

    def _ready(self, pad: bool) -> bool:
        if self.samples is None:
            if len(self.buffer) < self.carry and not pad:
                return False
            self.samples = self._take(self.carry)
        return True

    def _take(self, count: int) -> np.ndarray:
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        return np.pad(taken, (0, count - len(taken)))  # zeros past the end of the signal

    def _step(self, chunk: np.ndarray, frame_valid: bool) -> list[tuple[int, np.ndarray]]:
        flag = np.array([1.0 if frame_valid else 0.0], np.float32)
        feeds = dict(zip(INPUTS, (chunk, self.samples, self.mel, self.valid, flag), strict=True))
        aus, emitted, self.samples, self.mel, self.valid = self.session.run(list(OUTPUTS), feeds)
        self.frames_in += int(frame_valid)
        if emitted[0] < 0.5:  # the first steps: the look-ahead of frame 0 has not arrived yet
            return []
        self.emitted += 1
        return [(self.emitted - 1, aus[0])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="cause_streaming.onnx written by cause-pl export")
    parser.add_argument("wav", help="mono WAV file at the model's sample rate")
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    if "layout" not in metadata:
        print(f"{args.model}: no streaming layout in its metadata; not a cause_streaming.onnx", file=sys.stderr)
        return 1
    layout = json.loads(metadata["layout"])
    rate, fps = int(layout["sample_rate"]), int(layout["fps"])
    columns = json.loads(metadata.get("cause_pl", "{}")).get("au_columns")
    columns = columns or [f"out{index}" for index in range(int(layout["num_outputs"]))]
    with soundfile.SoundFile(args.wav) as audio:
        if audio.frames == 0:
            print(f"{args.wav}: no samples", file=sys.stderr)
            return 1
        if audio.channels != 1 or audio.samplerate != rate:
            print(
                f"{args.wav}: {audio.channels} channel(s) at {audio.samplerate} Hz; the model needs mono at {rate} Hz "
                f"(e.g. ffmpeg -i {args.wav} -ac 1 -ar {rate} out.wav)",
                file=sys.stderr,
            )
            return 1
        stream = Stream(session, layout)
        print(",".join(["frame", "timestamp", *columns]))
        for block in audio.blocks(blocksize=rate * CHUNK_MS // 1000, dtype="float32"):
            write_rows(stream.push(block), fps)
        write_rows(stream.finish(), fps)
    return 0


def write_rows(rows: list[tuple[int, np.ndarray]], fps: int) -> None:
    for frame, aus in rows:
        print(f"{frame},{frame / fps:.3f}," + ",".join(f"{value:.6f}" for value in aus))


if __name__ == "__main__":
    sys.exit(main())
