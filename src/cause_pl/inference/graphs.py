"""A trained CAUSE model as plain, exportable graphs: the whole-signal estimator and the streaming step.

Both take raw audio and hold the mel frontend (as matrix products, :class:`DFTLogMel`), the
model's normalisation, a copy of its net with weight norm folded into the weights, and the clamp
to the AU range, so an exported file needs nothing else. They run in float32 on CPU unless moved.

The streaming step's state is the last ``win_length - hop`` samples (at least one) and the last
``history + lookahead`` normalised mel frames with their validity flags (0 = before the signal's
start or after its end). Each step takes one hop of samples, computes one mel frame and runs the
net on the window of ``history + lookahead + 1`` frames, masked where the frames lie outside the
signal; the window's output at ``history`` is then exactly what the whole signal gives for that
frame (:meth:`cause_pl.nets.cause.CauseNet.forward_masked`). Each step therefore emits the frame
``lookahead`` frames before the newest one, or nothing during the first ``lookahead`` steps.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from cause_pl.features.dft_mel import DFTLogMel
from cause_pl.models.cause import MIN_MEL_STD, CAUSERegressor
from cause_pl.nets.cause import CauseNet
from cause_pl.nets.outputs import TargetActivation


def folded_net(net: CauseNet) -> CauseNet:
    """An eval-mode copy of ``net`` with every parametrization (weight norm) folded into plain weights.

    Not ``remove_parametrizations``: a deep copy shares its parametrized classes with ``net``, and
    that function deletes the weight property from the class, which would break ``net`` itself.
    """
    folded = copy.deepcopy(net).float().cpu().eval()
    for module in folded.modules():
        if parametrize.is_parametrized(module):
            with torch.no_grad():
                names = list(cast(nn.ModuleDict, module.parametrizations).keys())
                weights = {name: getattr(module, name).clone() for name in names}
            module.__class__ = parametrize.type_before_parametrizations(module)
            del module.parametrizations
            for name, value in weights.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return folded


class NormalisedMel(nn.Module):
    """Log-mel frames normalised with a model's statistics (shared by both graphs)."""

    mel_mean: Tensor
    mel_scale: Tensor

    def __init__(self, model: CAUSERegressor) -> None:
        super().__init__()
        self.mel = DFTLogMel(model.frontend_config)
        self.register_buffer("mel_mean", model.mel_mean.detach().float().cpu().clone())
        self.register_buffer("mel_scale", model.mel_std.detach().float().cpu().clamp_min(MIN_MEL_STD))

    def normalise(self, log_mel: Tensor) -> Tensor:
        return (log_mel - self.mel_mean) / self.mel_scale


class OfflineAUModel(nn.Module):
    """Waveform ``(samples,)`` at the model's sample rate -> AUs ``(frames, num_outputs)`` clamped to 0..5
    (other targets: mapped as ``model.finalise`` does)."""

    def __init__(self, model: CAUSERegressor) -> None:
        super().__init__()
        self.features = NormalisedMel(model)
        self.net = folded_net(model.net)
        self.finalise = TargetActivation(model.targets)

    def forward(self, wave: Tensor) -> Tensor:
        mel = self.features.normalise(self.features.mel(wave))
        return self.finalise(self.net(mel[None])[0])


@dataclass(frozen=True)
class StreamLayout:
    """What a driver needs to feed a streaming step: sizes, rates and the algorithmic latency.

    Frame ``i`` is centred on sample ``i * hop`` and weights the ``win_length`` samples from
    ``i * hop - lead``; it is final once sample ``i * hop + reach - 1`` has arrived.
    """

    sample_rate: int
    fps: int
    hop: int
    n_fft: int
    win_length: int
    history: int
    lookahead: int
    num_outputs: int
    n_mels: int

    @property
    def lead(self) -> int:
        """Samples a frame's window reads before its centre."""
        return self.n_fft // 2 - (self.n_fft - self.win_length) // 2

    @property
    def reach(self) -> int:
        """Samples a frame's window reads from its centre on."""
        return self.win_length - self.lead

    @property
    def carry_samples(self) -> int:
        """Samples kept between steps: the overlap of consecutive windows (at least 1, so no state is empty)."""
        return max(1, self.win_length - self.hop)

    @property
    def prefix_samples(self) -> int:
        """Zero samples a driver puts before the signal, so that the first step's hop ends at sample ``reach``."""
        return self.carry_samples + self.hop - self.reach

    @property
    def window_frames(self) -> int:
        """Mel frames the net reads per step: ``history + lookahead + 1``."""
        return self.history + self.lookahead + 1

    @property
    def state_frames(self) -> int:
        """Mel frames kept between steps (at least 1, so no state is empty)."""
        return max(1, self.history + self.lookahead)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: audio time from a frame's timestamp to the last sample its output reads,
        the window's part after the centre (``reach``) plus ``lookahead`` hops."""
        return 1000.0 * (self.reach + self.lookahead * self.hop) / self.sample_rate

    def to_dict(self) -> dict[str, int | float]:
        """The fields and, for drivers without cause-pl, the derived sizes and the latency."""
        derived = ("lead", "reach", "carry_samples", "prefix_samples", "window_frames", "state_frames", "latency_ms")
        return {**asdict(self), **{name: getattr(self, name) for name in derived}}


class StreamingStep(nn.Module):
    """One hop of audio and the state in; at most one AU frame and the next state out (fixed shapes).

    ``forward(chunk (hop,), samples (carry_samples,), mel (state_frames, n_mels), valid (state_frames,),
    frame_valid (1,))`` returns ``(aus (1, num_outputs), emitted_valid (1,), samples, mel, valid)``;
    ``frame_valid`` is 1 while the chunk's frame belongs to the signal, 0 for the flush steps after
    its end, and ``emitted_valid`` says whether ``aus`` is a frame of the signal.
    """

    def __init__(self, model: CAUSERegressor) -> None:
        super().__init__()
        net, config = model.net, model.frontend_config
        if net.history is None or net.lookahead is None:
            raise ValueError(
                f"{type(net).__name__} reads the whole signal (unbounded context) and cannot stream; "
                "streaming needs mlp, cnn, dcnn, causal_cnn or causal_dcnn"
            )
        self.features = NormalisedMel(model)
        self.net = folded_net(net)
        self.finalise = TargetActivation(model.targets)
        self.layout = StreamLayout(
            sample_rate=config.sample_rate,
            fps=config.fps,
            hop=config.hop_length,
            n_fft=config.n_fft,
            win_length=config.win_length,
            history=net.history,
            lookahead=net.lookahead,
            num_outputs=net.out_dim,
            n_mels=config.n_mels,
        )

    def initial_state(self) -> tuple[Tensor, Tensor, Tensor]:
        """The state before the first step: zero samples, zero frames, all frames invalid."""
        layout = self.layout
        return (
            torch.zeros(layout.carry_samples),
            torch.zeros(layout.state_frames, layout.n_mels),
            torch.zeros(layout.state_frames),
        )

    def forward(
        self, chunk: Tensor, samples: Tensor, mel: Tensor, valid: Tensor, frame_valid: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        layout = self.layout
        arrived = torch.cat([samples, chunk])
        frame = self.features.normalise(self.features.mel.frames(arrived[None, -layout.win_length :]))
        frames, mask = torch.cat([mel, frame]), torch.cat([valid, frame_valid])
        window, window_mask = frames[-layout.window_frames :], mask[-layout.window_frames :]
        aus = self.net.forward_masked(window[None], window_mask[None])[0, layout.history : layout.history + 1]
        emitted_valid = window_mask[layout.history : layout.history + 1]
        next_frames, next_valid = frames[-layout.state_frames :], mask[-layout.state_frames :]
        next_samples = arrived[-layout.carry_samples :]
        return self.finalise(aus), emitted_valid, next_samples, next_frames, next_valid
