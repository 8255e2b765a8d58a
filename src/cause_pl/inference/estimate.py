"""AU estimation from audio of any length in bounded memory (written out by :mod:`cause_pl.openface.writer`).

``estimate_aus`` computes features and runs the net chunk by chunk: each chunk of ``chunk_frames``
output frames reads its input with ``context`` extra frames on each side, and the log-mel of those
frames is computed from just the samples they need. Memory therefore depends on ``chunk_frames``,
not on the length of the audio (apart from the waveform and the (frames, 17) result).

Exactness: for the MLP, CNN and DCNN the context is the net's receptive field (0, 8, 80 frames),
so the result equals one pass over the whole input up to float round-off. The bidirectional RNN's
receptive field is unbounded: audio of at most ``chunk_frames`` frames is processed in one exact
pass; longer audio uses ``RNN_CONTEXT_FRAMES`` (10 s) of context on each side, which is
approximately equal to a full pass (the LSTM's memory of frames 10 s away is negligible).

Devices (*docs/design.md, "Devices"*): the model runs where its parameters are unless ``device``
says otherwise, and is never left moved: a model moved for the call is moved back before returning.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from cause_pl.au import AU_MAX, AU_MIN
from cause_pl.features.mel import MelFrontend
from cause_pl.media.audio import load_audio
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


def log_mel_frames(frontend: MelFrontend, wave: Tensor, first: int, stop: int) -> Tensor:
    """Frames ``first .. stop-1`` of ``frontend(wave)`` (stop - first, n_mels), from a slice of ``wave``.

    Frame ``i`` reads samples ``[i*hop - n_fft//2, i*hop - n_fft//2 + n_fft)``, zero outside the
    wave (the constant padding of the full pass). The slice is taken ``margin`` frames wider on each
    side so that the frontend's own padding at the slice's edges touches only frames dropped here.
    """
    config = frontend.config
    hop = config.hop_length
    margin = math.ceil(config.n_fft / hop)
    start = (first - margin) * hop
    end = (stop - 1 + margin) * hop + 1
    segment = wave.new_zeros(end - start)
    inside_start, inside_end = max(start, 0), min(end, wave.shape[0])
    if inside_end > inside_start:
        segment[inside_start - start : inside_end - start] = wave[inside_start:inside_end]
    device = next(frontend.buffers()).device
    return frontend(segment.to(device))[margin : margin + stop - first]


def _check_wave(wave: Tensor) -> Tensor:
    wave = torch.as_tensor(wave)
    if wave.ndim != 1 or wave.shape[0] < 1 or not wave.is_floating_point():
        raise ValueError(
            f"estimate_aus: wave must be a 1-D floating-point tensor with >= 1 sample, "
            f"got {wave.dtype} of shape {tuple(wave.shape)}"
        )
    return wave.float()


def estimate_aus(
    model: CAUSERegressor,
    wave: Tensor,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
    source: str | Path | None = None,
) -> Tensor:
    """AU intensities (F, num_aus) float32 on CPU, clamped to 0..5, for a mono ``wave``.

    ``wave`` is 1-D at the model's sample rate; F = ``model.frontend_config.num_frames(len(wave))``
    and row ``i`` is the face at ``i / fps`` seconds. The model runs on its own device (that of its
    parameters); ``device`` runs it elsewhere for this call only: it is moved there and back, so it is
    never left moved. The model runs in eval mode under ``inference_mode`` and is returned to its
    previous mode. Non-finite outputs (e.g. from a model with broken weights) raise a ValueError
    naming ``source`` (the file the wave came from), so NaN never reaches an output file.
    """
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise ValueError(f"estimate_aus: chunk_frames must be a positive integer, got {chunk_frames!r}")
    wave = _check_wave(wave)
    home = module_device(model)
    target = home if device is None else torch.device(device)
    moved = not same_device(target, home)
    if moved:
        model.to(target)
    try:
        aus = _estimate(model, wave, chunk_frames)
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


def _estimate(model: CAUSERegressor, wave: Tensor, chunk_frames: int) -> Tensor:
    """``estimate_aus`` where the model is now."""
    frontend = model.frontend().to(module_device(model))
    total = model.frontend_config.num_frames(wave.shape[0])
    context = context_frames(model.net)
    result = torch.empty(total, model.hparams.num_aus)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, total, chunk_frames):
                stop = min(start + chunk_frames, total)
                first, last = max(0, start - context), min(total, stop + context)
                mel = log_mel_frames(frontend, wave, first, last)
                aus = model(mel.unsqueeze(0))[0, start - first : stop - first]
                result[start:stop] = aus.clamp(AU_MIN, AU_MAX).float().cpu()
    finally:
        for module, training in modes:
            module.training = training
    return result


def estimate_file(
    model: CAUSERegressor,
    path: str | Path,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """AUs (F, num_aus) float32 and frame timestamps (F,) in seconds for an audio or video file."""
    config = model.frontend_config
    wave = load_audio(path, config.sample_rate)
    aus = estimate_aus(model, wave, chunk_frames=chunk_frames, device=device, source=path).numpy()
    return aus, np.arange(aus.shape[0], dtype=np.float64) / config.fps
