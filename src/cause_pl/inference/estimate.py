"""AU estimation from audio of any length in bounded memory (written out by :mod:`cause_pl.openface.writer`).

``estimate_stream`` computes features and runs the net chunk by chunk while the audio arrives in
blocks (:func:`cause_pl.media.audio.stream_audio`): each chunk of ``chunk_frames`` output frames
reads its input with ``context`` extra frames on each side, the log-mel of those frames is computed
from just the samples they need, and samples no later chunk needs are dropped. Memory therefore
depends on ``chunk_frames`` and the block size, not on the length of the audio (apart from the
(frames, 17) result). ``estimate_aus`` is the same for a waveform already in memory.

Exactness: for the MLP, CNN and DCNN the context is the net's receptive field (0, 8, 80 frames),
so the result equals one pass over the whole input up to float round-off. The bidirectional RNN's
receptive field is unbounded: audio of at most ``chunk_frames`` frames is processed in one exact
pass; longer audio uses ``RNN_CONTEXT_FRAMES`` (10 s) of context on each side, which is
approximately equal to a full pass (the LSTM's memory of frames 10 s away is negligible). How the
audio is split into blocks never changes the result.

Devices (*docs/design.md, "Devices"*): the model runs where its parameters are unless ``device``
says otherwise, and is never left moved: a model moved for the call is moved back before returning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from cause_pl.features.mel import MelFrontend
from cause_pl.media.audio import stream_audio
from cause_pl.models.cause import CAUSERegressor
from cause_pl.nets.cause import CauseNet

RNN_CONTEXT_FRAMES = 250
"""Context on each side of a chunk for nets with an unbounded receptive field (10 s at 25 fps)."""


DEFAULT_CHUNK_FRAMES = 3000
"""Output frames per chunk (2 minutes at 25 fps)."""


def module_device(module: nn.Module) -> torch.device:
    """Where ``module`` computes: the device of its first parameter (else buffer); CPU if it has neither.

    Not Lightning's ``LightningModule.device``, which is bookkeeping updated only by ``.to()`` on that
    module itself and misses nets loaded or moved elsewhere.
    """
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def same_device(a: str | torch.device, b: str | torch.device) -> bool:
    """Whether ``a`` and ``b`` name the same device (``cuda`` = the current CUDA device)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = torch.cuda.current_device() if a.type == "cuda" and torch.cuda.is_available() else 0
        return (current if a.index is None else a.index) == (current if b.index is None else b.index)
    return a.index == b.index


def context_frames(net: CauseNet) -> int:
    """Input frames needed on each side of a chunk: the receptive field, or the RNN's fixed context."""
    return RNN_CONTEXT_FRAMES if net.receptive_field is None else net.receptive_field


def log_mel_frames(frontend: MelFrontend, wave: Tensor, first: int, stop: int, offset: int = 0) -> Tensor:
    """Frames ``first .. stop-1`` of ``frontend(signal)`` (stop - first, n_mels), from a slice of it.

    ``wave`` holds samples ``offset .. offset+len(wave)-1`` of the signal (all of it by default).
    Frame ``i`` reads samples ``[i*hop - n_fft//2, i*hop - n_fft//2 + n_fft)``, zero outside the
    signal (the constant padding of the full pass). The slice is taken ``margin`` frames wider on each
    side so that the frontend's own padding at the slice's edges touches only frames dropped here.
    The caller guarantees ``wave`` covers the slice wherever the signal has samples.
    """
    config = frontend.config
    hop = config.hop_length
    margin = frame_margin(frontend)
    start = (first - margin) * hop
    end = (stop - 1 + margin) * hop + 1
    segment = wave.new_zeros(end - start)
    inside_start, inside_end = max(start, offset), min(end, offset + wave.shape[0])
    if inside_end > inside_start:
        segment[inside_start - start : inside_end - start] = wave[inside_start - offset : inside_end - offset]
    device = next(frontend.buffers()).device
    return frontend(segment.to(device))[margin : margin + stop - first]


def frame_margin(frontend: MelFrontend) -> int:
    """Extra frames ``log_mel_frames`` reads on each side of a slice: ``ceil(n_fft / hop)``."""
    return math.ceil(frontend.config.n_fft / frontend.config.hop_length)


def _check_block(block: Tensor) -> Tensor:
    block = torch.as_tensor(block)
    if block.ndim != 1 or not block.is_floating_point():
        raise ValueError(
            f"estimate_aus: audio must be 1-D floating-point tensors, got {block.dtype} of shape {tuple(block.shape)}"
        )
    return block.float()


def estimate_aus(
    model: CAUSERegressor,
    wave: Tensor,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
    source: str | Path | None = None,
) -> Tensor:
    """AU intensities (F, num_aus) float32 on CPU, clamped to 0..5, for a mono ``wave``.

    Models of other targets (:mod:`cause_pl.targets`) give theirs, mapped by ``model.finalise``.

    ``wave`` is 1-D at the model's sample rate; F = ``model.frontend_config.num_frames(len(wave))``
    and row ``i`` is the face at ``i / fps`` seconds. The model runs on its own device (that of its
    parameters); ``device`` runs it elsewhere for this call only: it is moved there and back, so it is
    never left moved. The model runs in eval mode under ``inference_mode`` and is returned to its
    previous mode. Non-finite outputs (e.g. from a model with broken weights) raise a ValueError
    naming ``source`` (the file the wave came from), so NaN never reaches an output file.
    """
    return estimate_stream(model, [wave], chunk_frames=chunk_frames, device=device, source=source)


def estimate_stream(
    model: CAUSERegressor,
    blocks: Iterable[Tensor],
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
    source: str | Path | None = None,
) -> Tensor:
    """``estimate_aus`` of the concatenation of ``blocks`` (1-D, any sizes), holding only what chunks need."""
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise ValueError(f"estimate_aus: chunk_frames must be a positive integer, got {chunk_frames!r}")
    home = module_device(model)
    target = home if device is None else torch.device(device)
    moved = not same_device(target, home)
    if moved:
        model.to(target)
    try:
        aus = _estimate(model, (_check_block(block) for block in blocks), chunk_frames)
    finally:
        if moved:
            model.to(home)
    check_finite_aus(aus, source)
    return aus


def check_finite_aus(aus: Tensor, source: str | Path | None) -> None:
    """ValueError "the model produced non-finite AUs for <source>" if ``aus`` holds NaN or inf."""
    finite = torch.isfinite(aus)
    if not bool(finite.all()):
        bad_frames = int((~finite).any(dim=-1).sum())
        raise ValueError(
            f"the model produced non-finite AUs for {source if source is not None else 'this audio'} "
            f"({bad_frames} of {aus.shape[0]} frames); check the checkpoint"
        )


def _estimate(model: CAUSERegressor, blocks: Iterator[Tensor], chunk_frames: int) -> Tensor:
    """``estimate_stream`` where the model is now.

    ``window`` holds samples ``offset ..`` of the signal. A chunk is computed as soon as the window
    reaches the last sample its frames read; that also proves the signal has more frames than the
    chunk's right context, so early chunks are exactly the chunks of the whole-signal plan.
    """
    frontend = model.frontend().to(module_device(model))
    hop, margin = model.frontend_config.hop_length, frame_margin(frontend)
    context = context_frames(model.net)
    window, offset, start = torch.zeros(0), 0, 0
    results: list[Tensor] = []

    def run_chunk(total: int | None) -> None:
        nonlocal window, offset, start
        stop = start + chunk_frames if total is None else min(start + chunk_frames, total)
        first = max(0, start - context)
        last = stop + context if total is None else min(total, stop + context)
        aus = model(log_mel_frames(frontend, window, first, last, offset).unsqueeze(0))[0, start - first : stop - first]
        results.append(model.finalise(aus).float().cpu())
        start = stop
        keep_from = max(0, (max(0, start - context) - margin) * hop)
        window, offset = window[max(0, keep_from - offset) :], max(offset, keep_from)

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for block in blocks:
                window = torch.cat([window, block])
                while offset + window.shape[0] >= (start + chunk_frames + context - 1 + margin) * hop + 1:
                    run_chunk(total=None)
            if offset + window.shape[0] == 0:
                raise ValueError("estimate_aus: the audio must hold >= 1 sample, got none")
            total = model.frontend_config.num_frames(offset + window.shape[0])
            while start < total:
                run_chunk(total)
    finally:
        for module, training in modes:
            module.training = training
    return torch.cat(results)


def estimate_file(
    model: CAUSERegressor,
    path: str | Path,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """AUs (F, num_aus) float32 and frame timestamps (F,) in seconds for an audio or video file, streamed."""
    config = model.frontend_config
    blocks = stream_audio(path, config.sample_rate)
    aus = estimate_stream(model, blocks, chunk_frames=chunk_frames, device=device, source=path).numpy()
    return aus, np.arange(aus.shape[0], dtype=np.float64) / config.fps
