"""``SpeechToFaceAnimator``: speech -> AU track (CAUSE) -> a still face animated frame by frame
(GANimation) -> an mp4 with the speech as its sound track (CAUSE section 3.5, Figure 3).

Bounded memory for audio of any length: the AU track (frames x 17 floats) is computed in chunks
(:func:`cause_pl.inference.estimate.estimate_aus`), then frames are generated ``frames_per_batch`` at a time
and streamed into the encoder, so no more than one batch of frames is ever held.

Frame ``i`` of the video shows the face at ``i / fps`` seconds, the time of AU frame ``i``; the
video has :func:`cause_pl.media.mp4.video_frame_count` frames, so it lasts as long as the audio.

As a LightningModule it renders in ``predict_step`` on the trainer's device: give
``Trainer.predict`` an ``inference.requests.AnimationRequests`` loader (``batch_size=None``), one request per
(audio, face, output) triple. :meth:`animate` does the same without a trainer.

Devices (*docs/design.md, "Devices"*): the animator follows its nets. Its :attr:`device` is the
device of the generator's parameters, not Lightning's bookkeeping; CAUSE runs where its own
parameters are and the generator where its are; nothing here moves a net. ``from_checkpoints(...,
map_location=D)`` puts both nets on D; ``.to(D)`` on the animator moves both. ``bf16`` autocasts on
the device type the generator is on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from lightning_fabric.utilities.data import AttributeDict
from torch import Tensor
from tqdm import tqdm

from cause_pl.faces.align import load_aligned_face, prepare_face
from cause_pl.faces.paste import PasteBack
from cause_pl.inference.estimate import DEFAULT_CHUNK_FRAMES, check_finite_aus, estimate_aus, module_device
from cause_pl.media.audio import load_audio
from cause_pl.media.frames import to_uint8_frames
from cause_pl.media.mp4 import Mp4Writer, video_frame_count
from cause_pl.models.cause import CAUSERegressor, load_cause_checkpoint
from cause_pl.models.ganimation import GANimation, load_ganimation_checkpoint
from cause_pl.openface.writer import write_openface_style_csv


def _check_window(frames: int) -> int:
    if frames < 1 or frames % 2 == 0:
        raise ValueError(f"smoothing window must be a positive odd number of frames, got {frames}")
    return frames


def smooth_track(aus: Tensor, frames: int) -> Tensor:
    """Centred moving average over ``frames`` (odd; 1 = unchanged) of a (F, K) track, edges repeated."""
    if _check_window(frames) == 1 or aus.shape[0] == 0:
        return aus
    half = frames // 2
    padded = F.pad(aus.T.unsqueeze(0), (half, half), mode="replicate")
    return F.avg_pool1d(padded, frames, stride=1)[0].T.contiguous()


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``timings[stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - started


def _timed_batches(batches: Iterator[np.ndarray], timings: dict[str, float]) -> Iterator[np.ndarray]:
    """``batches``, with the time spent producing each (the generator's work) added to ``generate``."""
    while True:
        with _timed(timings, "generate"):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _encode(writer: Mp4Writer, batch: np.ndarray, paste_back: PasteBack | None) -> None:
    """Write one batch of frames, each first put back into its photo when ``paste_back`` is given."""
    for frames in [batch] if paste_back is None else map(paste_back, batch):
        writer.write(frames)


@dataclass
class AnimationResult:
    """What one rendering produced, and where its time went (seconds per stage)."""

    path: Path
    frames: int
    seconds: float
    au_track: Tensor
    """(frames, 17) AU intensities (0..5) that drove the frames, after scaling and smoothing."""
    timings: dict[str, float] = field(default_factory=dict)
    """``estimate`` (audio -> AUs), ``generate`` (AUs -> frames) and ``encode`` (frames -> mp4). Encoding
    overlaps generation (a second thread), so ``encode`` is only the time spent waiting for the encoder."""

    @property
    def frames_per_second(self) -> float:
        """End-to-end rendering speed, frames per second of wall time."""
        return self.frames / max(sum(self.timings.values()), 1e-9)


class SpeechToFaceAnimator(pl.LightningModule):
    """A CAUSE regressor and a GANimation generator put together to animate faces from speech.

    Args:
        cause: trained :class:`CAUSERegressor` (its frontend and statistics included).
        ganimation: trained :class:`GANimation`; only its generator is used.
        au_scale: multiplies the estimated AU intensities (0 = still face, > 1 exaggerates);
            the result is clamped to 0..5.
        smoothing_frames: centred moving average over this many AU frames (odd, 1 = none).
        frames_per_batch: frames generated per generator call (memory / speed trade-off).
        chunk_frames: AU frames per CAUSE chunk (see :func:`estimate_aus`).
        bf16: generate under bfloat16 autocast (on the generator's device type): ~2x faster on GPUs
            and on CPUs with native bf16 (``benchmarks/ganimation.py``), pixels within a few levels of
            fp32; slower on other CPUs.

    The nets stay where they are: the animator runs each on its own device (see the module docstring).
    """

    hparams: AttributeDict  # what save_hyperparameters() stores; Lightning's property type also allows a plain mapping

    def __init__(
        self,
        cause: CAUSERegressor,
        ganimation: GANimation,
        au_scale: float = 1.0,
        smoothing_frames: int = 1,
        frames_per_batch: int = 32,
        chunk_frames: int = DEFAULT_CHUNK_FRAMES,
        bf16: bool = False,
    ) -> None:
        super().__init__()
        if cause.targets.columns != ganimation.targets.columns:
            raise ValueError(
                f"mismatched checkpoints: CAUSE predicts {cause.targets.size} {cause.targets.name} but "
                f"GANimation is conditioned on {ganimation.targets.size} {ganimation.targets.name}"
            )
        if not au_scale >= 0:
            raise ValueError(f"au_scale must be >= 0, got {au_scale}")
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch must be >= 1, got {frames_per_batch}")
        _check_window(smoothing_frames)
        self.save_hyperparameters(ignore=["cause", "ganimation"])
        self.cause = cause.eval()
        self.ganimation = ganimation.eval()

    @classmethod
    def from_checkpoints(
        cls,
        cause_ckpt: str | Path,
        ganimation_ckpt: str | Path,
        map_location: str | torch.device = "cpu",
        **options: Any,
    ) -> SpeechToFaceAnimator:
        """Both halves loaded with ``weights_only=True`` onto ``map_location`` (where the animator then
        runs); ``options`` as in the constructor."""
        return cls(
            load_cause_checkpoint(cause_ckpt, map_location),
            load_ganimation_checkpoint(ganimation_ckpt, map_location),
            **options,
        )

    @property
    def device(self) -> torch.device:
        """Where frames are generated: the device of the generator's parameters (the animator follows its
        nets; Lightning's own attribute changes only through ``.to()`` on the animator itself)."""
        return module_device(self.ganimation.generator)

    @property
    def image_size(self) -> int:
        """Side of the square frames the generator makes (input faces are resized to it)."""
        return int(self.ganimation.hparams.image_size)

    @property
    def fps(self) -> int:
        """Video frame rate: the AU frame rate of the CAUSE frontend."""
        return int(self.cause.frontend_config.fps)

    @property
    def sample_rate(self) -> int:
        """Rate the audio is read at (the CAUSE frontend's) and written to the mp4 at."""
        return int(self.cause.frontend_config.sample_rate)

    def load_face(self, path: str | Path, align: bool = False, face_index: int = 0) -> Tensor:
        """A face image file prepared for the generator: centre-cropped (:mod:`cause_pl.media.image`) or,
        with ``align``, face ``face_index`` (0 = the largest) found and aligned (:mod:`cause_pl.faces`)."""
        return prepare_face(path, self.image_size, align, face_index)

    def au_track(self, wave: Tensor, source: str | Path | None = None) -> Tensor:
        """(frames, K) AUs (0..5) on CPU driving the video of ``wave``: estimated (on CAUSE's own device),
        scaled, smoothed; non-finite estimates are a ValueError naming ``source``."""
        aus = estimate_aus(self.cause, wave, chunk_frames=self.hparams.chunk_frames, source=source)
        aus = aus[: video_frame_count(wave.shape[-1], self.sample_rate, self.fps)]
        aus = (aus * self.hparams.au_scale).clamp(self.cause.targets.low, self.cause.targets.high)
        return smooth_track(aus, self.hparams.smoothing_frames)

    @torch.inference_mode()
    def frames(self, face: Tensor, aus: Tensor) -> Iterator[np.ndarray]:
        """uint8 (n, S, S, 3) batches of frames of ``face`` (3, S, S) in [-1, 1] showing ``aus`` (F, K)."""
        if face.shape != (3, self.image_size, self.image_size):
            raise ValueError(f"face must have shape (3, {self.image_size}, {self.image_size}), got {tuple(face.shape)}")
        device = self.device
        face = face.to(device, torch.float32).unsqueeze(0)
        step = self.hparams.frames_per_batch
        for start in range(0, aus.shape[0], step):
            cond = aus[start : start + step].to(device, torch.float32) / self.ganimation.targets.high
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.hparams.bf16):
                output = self.ganimation.generate(face.expand(cond.shape[0], -1, -1, -1), cond)
            yield to_uint8_frames(output.image)

    def key_frames(self, face: Tensor, aus: Tensor, count: int = 8) -> np.ndarray:
        """uint8 (count, S, S, 3): frames at ``count`` evenly spaced AU frames, first and last included."""
        picks = torch.linspace(0, max(aus.shape[0] - 1, 0), count).round().long().unique()
        return np.concatenate(list(self.frames(face, aus[picks])))

    def render(
        self,
        wave: Tensor,
        face: Tensor,
        out: str | Path,
        progress: bool = False,
        au_csv: str | Path | None = None,
        aus: Tensor | None = None,
        source: str | Path | None = None,
        paste_back: PasteBack | None = None,
    ) -> AnimationResult:
        """Animate ``face`` with the speech ``wave`` (1-D, at :attr:`sample_rate`) into the mp4 ``out``.

        ``aus`` (frames, K) on the 0..5 scale drives the frames instead of the AUs CAUSE estimates
        (e.g. a ground-truth track, to compare against); it must have one row per video frame.
        ``source`` names the audio file in errors (non-finite AUs are refused before anything is written).
        ``paste_back`` puts each frame back into the photo ``face`` was cut from: the video has the photo's
        size (odd sides padded to even by the writer).
        """
        wave = torch.as_tensor(wave).float().cpu()
        timings = dict.fromkeys(("estimate", "generate", "encode"), 0.0)
        with _timed(timings, "estimate"):
            aus = self.au_track(wave, source) if aus is None else self._checked_track(aus, wave, source)
        if au_csv is not None:
            write_openface_style_csv(aus, self.fps, au_csv, columns=self.cause.targets.columns)
        bar = tqdm(total=aus.shape[0], unit="frame", desc=f"animating {Path(out).name}", disable=not progress)
        # one batch is encoded on a second thread while the next is generated; on the way out the pool
        # exits first (waiting for that batch), the writer last (discarding its file if anything failed)
        with (
            Mp4Writer(out, fps=self.fps, audio=wave.numpy(), sample_rate=self.sample_rate) as writer,
            bar,
            ThreadPoolExecutor(1, thread_name_prefix="mp4-encode") as encoder,
        ):
            encoding: Future[None] | None = None
            for batch in _timed_batches(self.frames(face, aus), timings):
                with _timed(timings, "encode"):  # only the wait for the encoder: the stages add up to the wall time
                    if encoding is not None:
                        encoding.result()
                encoding = encoder.submit(_encode, writer, batch, paste_back)
                bar.update(len(batch))
            with _timed(timings, "encode"):
                if encoding is not None:
                    encoding.result()
                writer.close()  # flushes the encoders and writes the rest of the audio
        return AnimationResult(Path(out), aus.shape[0], wave.shape[0] / self.sample_rate, aus, timings)

    def _checked_track(self, aus: Tensor, wave: Tensor, source: str | Path | None) -> Tensor:
        expected = (video_frame_count(wave.shape[-1], self.sample_rate, self.fps), self.cause.hparams.num_aus)
        if tuple(aus.shape) != expected:
            raise ValueError(f"aus must have shape {expected} for this audio, got {tuple(aus.shape)}")
        check_finite_aus(aus, source)
        return aus

    def animate(
        self,
        audio: str | Path,
        face: str | Path,
        out: str | Path,
        progress: bool = False,
        au_csv: str | Path | None = None,
        align: bool = False,
        face_index: int = 0,
        paste_back: bool = False,
    ) -> AnimationResult:
        """Animate the face image file ``face`` with the audio or video file ``audio`` into ``out``
        (``align`` and ``face_index`` as in :meth:`load_face`). ``paste_back`` (aligned faces only):
        the video at the photo's framing, the animated face warped back into it (:mod:`cause_pl.faces.paste`)."""
        if paste_back and not align:
            raise ValueError("paste_back needs align: only an aligned face knows where it came from")
        wave = load_audio(audio, self.sample_rate)
        if paste_back:
            aligned = load_aligned_face(face, self.image_size, face_index)
            image, paste = aligned.tensor(), PasteBack(aligned)
        else:
            image, paste = self.load_face(face, align, face_index), None
        return self.render(wave, image, out, progress=progress, au_csv=au_csv, source=audio, paste_back=paste)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> AnimationResult:
        """Render one ``AnimationRequests`` item (``wave``, ``face``, ``out``) on this module's device."""
        return self.render(batch["wave"], batch["face"], batch["out"])
