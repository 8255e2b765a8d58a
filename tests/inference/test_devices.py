"""Where inference runs (docs/design.md, "Devices"): code follows the nets and never moves them.

On CPU, a spy on ``nn.Module._apply`` (what every ``.to()``, ``.cpu()``, ``.cuda()`` goes through)
proves that nothing moves the nets, forward pre-hooks record the device of every tensor CAUSE and the
generator meet, and an animator whose Lightning bookkeeping disagrees with its nets (what
``from_checkpoints(map_location="cuda")`` used to leave: bookkeeping ``cpu``, nets on the GPU) must
still run where the nets are. The ``cuda``-marked tests run the same on a GPU (skipped without one).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

from cause_pl.au import NUM_AUS
from cause_pl.inference.animator import SpeechToFaceAnimator
from cause_pl.inference.estimate import estimate_aus, module_device, same_device
from cause_pl.models import CAUSERegressor, GANimation
from cause_pl.models.cause import load_cause_checkpoint
from tests.builders.mp4_probe import decode_mp4

ROOT = Path(__file__).resolve().parents[2]


def tiny_nets() -> tuple[CAUSERegressor, GANimation]:
    """A CAUSE CNN with unit normalisation and a 32-px GANimation, freshly initialised (seed 0)."""
    torch.manual_seed(0)
    cause = CAUSERegressor(arch="cnn", log_per_au=False)
    n_mels = cause.frontend_config.n_mels
    cause.set_normalization(torch.zeros(n_mels), torch.ones(n_mels), torch.zeros(NUM_AUS))
    ganimation = GANimation(
        image_size=32, g_base_channels=8, g_res_blocks=1, d_base_channels=8, d_layers=3, d_max_channels=32
    )
    return cause, ganimation


@contextmanager
def moves_of(monkeypatch: pytest.MonkeyPatch, *modules: nn.Module) -> Iterator[list[str]]:
    """Names of the ``modules`` (and their submodules) that ``_apply`` (``.to`` and friends) touched."""
    watched = {id(module): name for root in modules for name, module in root.named_modules(prefix=type(root).__name__)}
    moved: list[str] = []
    original = nn.Module._apply

    def spy(self: nn.Module, *args, **kwargs):
        if id(self) in watched:
            moved.append(watched[id(self)])
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(nn.Module, "_apply", spy)
        yield moved


@contextmanager
def inputs_of(**modules: nn.Module) -> Iterator[list[tuple[str, torch.device, bool]]]:
    """(module name, device, inference mode on) for every tensor input each module's forward gets."""
    seen: list[tuple[str, torch.device, bool]] = []
    handles = []
    for name, module in modules.items():

        def record(module: nn.Module, args: tuple, name: str = name) -> None:
            for value in args:
                if isinstance(value, torch.Tensor):
                    seen.append((name, value.device, torch.is_inference_mode_enabled()))

        handles.append(module.register_forward_pre_hook(record))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _wave(seconds: float = 1.0, rate: int = 16000) -> torch.Tensor:
    return 0.1 * torch.randn(int(seconds * rate), generator=torch.Generator().manual_seed(0))


def _face(size: int) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_module_device_and_same_device():
    cause, ganimation = tiny_nets()
    assert module_device(cause) == module_device(ganimation.generator) == torch.device("cpu")
    assert module_device(nn.ReLU()) == torch.device("cpu")
    assert same_device("cpu", torch.device("cpu")) and not same_device("cpu", "meta")


def test_estimate_aus_runs_where_the_model_is_and_never_moves_it(monkeypatch):
    cause, _ = tiny_nets()
    cause.train()
    wave = _wave()
    with moves_of(monkeypatch, cause) as moved, inputs_of(net=cause.net) as seen:
        default = estimate_aus(cause, wave, chunk_frames=10)
        named = estimate_aus(cause, wave, chunk_frames=10, device="cpu")  # its own device, named
    assert moved == [], f"estimate_aus moved the model: {moved[:5]}"
    assert seen and all(device == torch.device("cpu") and inference for _, device, inference in seen)
    torch.testing.assert_close(default, named)
    assert cause.training and all(module.training for module in cause.modules())


def test_animator_never_moves_its_nets(monkeypatch, tmp_path):
    cause, ganimation = tiny_nets()
    animator = SpeechToFaceAnimator(cause, ganimation, frames_per_batch=8)
    wave, face = _wave(), _face(animator.image_size)
    with moves_of(monkeypatch, cause, ganimation) as moved:
        aus = animator.au_track(wave)
        frames = list(animator.frames(face, aus))
        result = animator.render(wave, face, tmp_path / "a.mp4")
    assert moved == [], f"the animator moved its nets: {moved[:5]}"
    assert sum(len(batch) for batch in frames) == result.frames == len(aus)


def test_animator_follows_its_nets_not_lightning_bookkeeping(monkeypatch, tmp_path):
    """Lightning's ``device`` of the animator changes only through ``.to()`` on the animator itself;
    nets loaded elsewhere (``from_checkpoints(map_location="cuda")``) left it behind. Here the
    bookkeeping names another device than the nets' (CPU): the animator must still run on CPU."""
    cause, ganimation = tiny_nets()
    animator = SpeechToFaceAnimator(cause, ganimation, frames_per_batch=8, bf16=True)
    animator._device = torch.device("meta")  # stale bookkeeping; no tensor is on meta
    assert animator.device == torch.device("cpu")
    wave, face = _wave(), _face(animator.image_size)
    with (
        moves_of(monkeypatch, cause, ganimation) as moved,
        inputs_of(cause=cause.net, generator=ganimation.generator) as seen,
    ):
        result = animator.render(wave, face, tmp_path / "a.mp4")
    assert moved == []
    assert {name for name, _, _ in seen} == {"cause", "generator"}
    assert all(device == torch.device("cpu") and inference for _, device, inference in seen), seen[:5]
    assert len(decode_mp4(result.path).frames) == result.frames


def test_animator_to_moves_both_nets_and_its_device():
    cause, ganimation = tiny_nets()
    animator = SpeechToFaceAnimator(cause, ganimation).to(torch.float64)
    assert next(animator.cause.parameters()).dtype == next(animator.ganimation.parameters()).dtype == torch.float64
    assert animator.device == torch.device("cpu")


# ---- the same on a GPU (skipped without CUDA; benchmarks/gpu_check.sh runs them) ----


@pytest.mark.cuda
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_cuda_animator_from_checkpoints_runs_on_the_gpu_end_to_end(quick_demo, monkeypatch, tmp_path, bf16):
    files = quick_demo.files
    animator = SpeechToFaceAnimator.from_checkpoints(
        files["cause_checkpoint"], files["ganimation_checkpoint"], map_location="cuda", frames_per_batch=16, bf16=bf16
    )
    assert animator.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in (*animator.cause.parameters(), *animator.ganimation.parameters()))
    nets = {"cause": animator.cause.net, "generator": animator.ganimation.generator}
    with moves_of(monkeypatch, animator.cause, animator.ganimation) as moved, inputs_of(**nets) as seen:
        result = animator.animate(files["speech"], files["face"], tmp_path / "gpu.mp4")
    assert moved == []
    assert {name for name, _, _ in seen} == {"cause", "generator"}
    assert all(device.type == "cuda" for _, device, _ in seen), seen[:5]
    video = decode_mp4(result.path)
    assert len(video.frames) == result.frames > 0
    reference = SpeechToFaceAnimator.from_checkpoints(files["cause_checkpoint"], files["ganimation_checkpoint"])
    cpu = reference.render(*_demo_inputs(reference, files), tmp_path / "cpu.mp4")
    torch.testing.assert_close(result.au_track, cpu.au_track, atol=1e-3, rtol=1e-3)


def _demo_inputs(animator: SpeechToFaceAnimator, files) -> tuple[torch.Tensor, torch.Tensor]:
    wave, rate = soundfile.read(files["speech"], dtype="float32")
    assert rate == animator.sample_rate
    return torch.from_numpy(wave), animator.load_face(files["face"])


@pytest.mark.cuda
def test_cuda_estimate_equals_cpu(quick_demo, monkeypatch):
    files = quick_demo.files
    wave = torch.from_numpy(soundfile.read(files["speech"], dtype="float32")[0])
    cpu = estimate_aus(load_cause_checkpoint(files["cause_checkpoint"]), wave, chunk_frames=40)
    model = load_cause_checkpoint(files["cause_checkpoint"], map_location="cuda")
    with moves_of(monkeypatch, model) as moved:
        gpu = estimate_aus(model, wave, chunk_frames=40)
    assert moved == [] and module_device(model).type == "cuda"
    torch.testing.assert_close(gpu, cpu, atol=1e-3, rtol=1e-3)
    elsewhere = load_cause_checkpoint(files["cause_checkpoint"])  # on CPU, run on the GPU for one call
    torch.testing.assert_close(estimate_aus(elsewhere, wave, chunk_frames=40, device="cuda"), cpu, atol=1e-3, rtol=1e-3)
    assert module_device(elsewhere).type == "cpu"  # moved back


@pytest.mark.cuda
def test_cuda_animate_and_estimate_commands(quick_demo, tmp_path):
    files = quick_demo.files
    common = ["--cause_ckpt", files["cause_checkpoint"], "--ganimation_ckpt", files["ganimation_checkpoint"]]
    animate = [
        sys.executable,
        "-m",
        "cause_pl.cli.main",
        "animate",
        "--audio",
        files["speech"],
        "--face",
        files["face"],
        "--no_align",  # alignment is CPU work (tests/cli), and a GPU image's OpenCV may lack its cascades
    ]
    result = subprocess.run(
        [*map(str, animate), *map(str, common), "--out", str(tmp_path / "a.mp4"), "--device", "cuda", "--bf16"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "frames/s" in result.stderr
    estimate = [sys.executable, "-m", "cause_pl.cli.main", "estimate", str(files["speech"])]
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.csv"
        result = subprocess.run(
            [*estimate, "--ckpt", str(files["cause_checkpoint"]), "--out", str(out), "--device", device],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    cpu = np.loadtxt(tmp_path / "cpu.csv", delimiter=",", skiprows=1)
    gpu = np.loadtxt(tmp_path / "cuda.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)
