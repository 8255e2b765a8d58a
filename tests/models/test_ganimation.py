"""GANimation LightningModule, its loss terms and evaluation tools, trained on synthetic faces."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cause_pl.au import AU_MAX, NUM_AUS
from cause_pl.evaluation.ganimation import FaceAURegressor, au_error, fit_face_au_regressor, identity_score
from cause_pl.models.ganimation import GANimation, LinearDecaySchedule
from cause_pl.models.ganimation_losses import attention_total_variation, gradient_penalty, wasserstein_gap
from cause_pl.synthetic.face_identity import random_identity
from cause_pl.synthetic.faces import draw_face, synth_face

pytestmark = [
    pytest.mark.filterwarnings("ignore:The '(train|val)_dataloader' does not have many workers"),
    # epochs of 1-2 batches: the generator may not step before the first epoch-end lr update
    pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before"),
]

SIZE = 32
# The expression parts of a 32 px cartoon face cover ~5% of it: a faithful editor keeps ~95% of
# the pixels, so the saturation warning (0.95 by default) would fire on a healthy run.
LEARNING_HPARAMS = {"critic_steps": 1, "lr_g": 5e-4, "lr_d": 5e-4, "saturation_threshold": 0.99}
LEARNING_STEPS = 2000  # 1000 batches of 8: one critic and one generator step each
LOGGED_TRAIN_KEYS = {
    "d/loss",
    "d/wasserstein",
    "d/gp",
    "d/cond",
    "g/loss",
    "g/adv",
    "g/cond",
    "g/cycle",
    "g/attn_mean",
    "g/attn_tv",
    "attention/mean",
}


def face_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


class SyntheticFaceBatches(Dataset):
    """Faces ``start .. start+count-1`` in the face batch contract; each face's target AUs are a
    fixed other face's AUs /5 plus U(-noise, noise), so that runs are reproducible."""

    def __init__(self, count: int, *, start: int = 0, target_noise: float = 0.1, num_identities: int = 20):
        faces = [synth_face(i, size=SIZE, num_identities=num_identities) for i in range(start, start + count)]
        self.images = torch.stack([face_tensor(face.image) for face in faces])
        self.aus = torch.from_numpy(np.stack([face.aus for face in faces])) / AU_MAX
        rng = np.random.default_rng([start, count])
        partner = (np.arange(count) + rng.integers(1, count, size=count)) % count
        noise = rng.uniform(-target_noise, target_noise, size=(count, NUM_AUS)).astype(np.float32)
        self.target_au = self.aus[partner] + torch.from_numpy(noise)
        self.keys = [face.key for face in faces]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index],
            "au": self.aus[index],
            "target_au": self.target_au[index],
            "keys": self.keys[index],
        }


@pytest.fixture(scope="module")
def faces() -> SyntheticFaceBatches:
    return SyntheticFaceBatches(8)


def loader(dataset: Dataset, batch_size: int = 4, shuffle: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def small_model(seed: int = 0, **overrides) -> GANimation:
    pl.seed_everything(seed, verbose=False)
    config = {"image_size": SIZE, "g_base_channels": 16, "g_res_blocks": 2, "d_base_channels": 16, "d_layers": 4}
    return GANimation(**{**config, **overrides})


def trainer(**overrides) -> pl.Trainer:
    config = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return pl.Trainer(**{**config, **overrides})


def adam_steps(optimizer) -> int:
    """Steps Adam has taken, read from its state (0 before the first)."""
    state = optimizer.state.get(optimizer.param_groups[0]["params"][0], {})
    return int(state.get("step", 0))


# --- loss terms --------------------------------------------------------------------------------


def linear_critic(weight: torch.Tensor):
    return lambda images: (images * weight).flatten(1).sum(dim=1)


def test_gradient_penalty_of_a_linear_critic_is_its_slope_error():
    torch.manual_seed(0)
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    direction = torch.randn(3, 8, 8)
    unit = direction / direction.norm()
    mix = torch.rand(5)
    assert gradient_penalty(linear_critic(unit), real, fake, mix).item() == pytest.approx(0, abs=1e-6)
    assert gradient_penalty(linear_critic(3 * unit), real, fake, mix).item() == pytest.approx(4, rel=1e-5)


def test_gradient_penalty_evaluates_on_the_segment_between_real_and_fake():
    """For score(x) = ||x||^2 / 2 the input gradient is x itself, so the penalty reads x."""
    torch.manual_seed(1)
    real, fake = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    mix = torch.tensor([0.0, 0.25, 0.5, 1.0])
    between = mix.view(4, 1, 1, 1) * real + (1 - mix.view(4, 1, 1, 1)) * fake
    expected = ((between.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty = gradient_penalty(lambda x: 0.5 * x.pow(2).flatten(1).sum(dim=1), real, fake, mix)
    torch.testing.assert_close(penalty, expected)


def test_gradient_penalty_differentiates_into_the_critic():
    """Linear critic w: penalty (||w|| - 1)^2, whose gradient is 2 (||w|| - 1) w / ||w||."""
    weight = torch.full((3, 4, 4), 0.5, requires_grad=True)
    real, fake = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    gradient_penalty(linear_critic(weight), real, fake, torch.rand(2)).backward()
    norm = weight.detach().norm()
    torch.testing.assert_close(weight.grad, 2 * (norm - 1) * weight.detach() / norm)


def test_gradient_penalty_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(2)
    critic = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.01), nn.Conv2d(8, 1, 3), nn.Flatten())
    score = lambda images: critic(images).sum(dim=1)  # noqa: E731
    real, fake = torch.randn(3, 3, 9, 9).bfloat16(), torch.randn(3, 3, 9, 9).bfloat16()
    mix = torch.rand(3)
    reference = gradient_penalty(score, real.float(), fake.float(), mix)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient_penalty(score, real, fake, mix)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference)  # a bf16 computation is off by ~1e-2 relative


def test_gradient_penalty_rejects_mismatched_inputs():
    real = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(linear_critic(torch.ones(3, 4, 4)), real, torch.zeros(3, 3, 4, 4), torch.rand(2))
    with pytest.raises(ValueError, match="mix"):
        gradient_penalty(linear_critic(torch.ones(3, 4, 4)), real, real, torch.rand(3))
    with pytest.raises(ValueError, match="one score per sample"):
        gradient_penalty(lambda x: x.flatten(1), real, real, torch.rand(2))


def test_total_variation_counts_neighbour_jumps_per_image():
    constant = torch.full((2, 1, 6, 7), 0.3)
    assert attention_total_variation(constant).item() == 0
    step = torch.zeros(1, 1, 6, 7)
    step[..., 4:] = 1  # one unit jump in each of the 6 rows
    checker = ((torch.arange(6)[:, None] + torch.arange(7)[None, :]) % 2).float()[None, None]
    jumps_checker = 6 * 6 + 5 * 7  # every horizontal and vertical neighbour pair differs by 1
    assert attention_total_variation(step).item() == pytest.approx(6)
    both = torch.cat([step, checker])
    assert attention_total_variation(both).item() == pytest.approx((6 + jumps_checker) / 2)


def test_default_attention_tv_weight_equals_the_official_one_at_its_batch_of_25():
    """The official code weights the absolute neighbour differences summed over its whole batch of 25
    by 1e-5; the default weight on the per-mask sums averaged over the batch gives the same loss."""
    masks = torch.rand(25, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    official_sum = (masks[..., :, 1:] - masks[..., :, :-1]).abs().sum() + (
        masks[..., 1:, :] - masks[..., :-1, :]
    ).abs().sum()
    weight = GANimation().hparams.lambda_attn_tv
    assert weight * attention_total_variation(masks).item() == pytest.approx(1e-5 * official_sum.item(), rel=1e-6)


def test_wasserstein_gap_is_positive_when_real_scores_higher():
    assert wasserstein_gap(torch.tensor([2.0, 4.0]), torch.tensor([[1.0], [0.0]])).item() == 2.5


def test_linear_decay_schedule_matches_official_epoch_factors():
    schedule = LinearDecaySchedule(constant=2, decay=4)
    assert [schedule(epoch) for epoch in range(8)] == [1, 1, 1, 0.75, 0.5, 0.25, 0, 0]
    assert LinearDecaySchedule(3, 0)(100) == 1
    with pytest.raises(ValueError, match="epochs"):
        LinearDecaySchedule(-1, 2)


# --- training ----------------------------------------------------------------------------------


class OptimizerStepLog(pl.Callback):
    """(critic steps, generator steps) after every training batch, read from Adam's state."""

    def __init__(self) -> None:
        self.counts: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        opt_g, opt_d = trainer.optimizers
        self.counts.append((adam_steps(opt_d), adam_steps(opt_g)))


def test_training_steps_the_generator_once_every_critic_steps(faces):
    model = small_model(critic_steps=3)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    steps = OptimizerStepLog()
    run = trainer(max_steps=9, callbacks=[steps])  # global_step counts both optimisers' steps
    run.fit(model, loader(faces))
    assert steps.counts == [(batch, batch // 3) for batch in range(1, 8)]
    assert run.global_step == 9
    assert set(run.callback_metrics) >= LOGGED_TRAIN_KEYS
    assert all(torch.isfinite(run.callback_metrics[key]) for key in LOGGED_TRAIN_KEYS)
    for name, parameter in model.named_parameters():
        assert not torch.equal(parameter.detach(), before[name]), f"{name} was never updated"


def test_a_generator_turn_reuses_the_critic_steps_forward(faces):
    """With critic_steps=2: one generator forward on a critic-only batch (without a graph), two on a
    generator turn (the edit, with its graph reused by the generator step, and the reconstruction)."""
    model = small_model(critic_steps=2)
    calls: list[bool] = []
    model.generator.register_forward_hook(lambda module, inputs, output: calls.append(output.image.requires_grad))
    trainer(max_steps=3).fit(model, loader(faces))  # batch 1: critic; batch 2: critic + generator
    assert calls == [False, True, True]


@pytest.mark.parametrize(("gp_fraction", "penalty_pairs"), [(1.0, 4), (0.5, 2), (0.1, 1)])
def test_the_gradient_penalty_uses_its_share_of_the_batch(faces, gp_fraction: float, penalty_pairs: int):
    """A critic-only batch of 4: the critic scores the 4 reals, the 4 fakes, then the penalty's
    interpolates, ``gp_fraction`` of the pairs (at least one)."""
    model = small_model(critic_steps=2, gp_fraction=gp_fraction)
    sizes: list[int] = []
    model.critic.register_forward_hook(lambda module, inputs, output: sizes.append(inputs[0].shape[0]))
    run = trainer(max_steps=1)
    run.fit(model, loader(faces))
    assert sizes == [4, 4, penalty_pairs]
    assert torch.isfinite(run.callback_metrics["d/gp"])


def critic_au_error(model: GANimation, faces: SyntheticFaceBatches) -> float:
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model.critic(faces.images)[1], faces.aus).item()


class WarmupProbe(OptimizerStepLog):
    """Step counts, plus the critic's AU error and the generator's weights when ``at`` batches are done."""

    def __init__(self, faces: SyntheticFaceBatches, at: int) -> None:
        super().__init__()
        self.faces, self.at = faces, at
        self.au_error_then = float("nan")
        self.generator_then: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)
        if len(self.counts) == self.at:
            self.au_error_then = critic_au_error(module, self.faces)
            self.generator_then = {name: p.detach().clone() for name, p in module.generator.named_parameters()}


def test_critic_warmup_teaches_the_au_head_before_the_generator_steps(faces):
    """The first critic_warmup_steps batches step only the critic, on the real images' AUs: no
    generator forward, no generator step; then the usual cadence, counted from the warm-up's end."""
    warmup = 12
    model = small_model(critic_steps=1, critic_warmup_steps=warmup, lr_d=1e-3)
    generator_before = {name: p.detach().clone() for name, p in model.generator.named_parameters()}
    mean_au_error = torch.nn.functional.mse_loss(faces.aus.mean(0).expand_as(faces.aus), faces.aus).item()
    probe = WarmupProbe(faces, at=warmup)
    forwards_at: list[int] = []
    model.generator.register_forward_hook(lambda module, inputs, output: forwards_at.append(len(probe.counts)))
    run = trainer(max_steps=warmup + 2 * 2, callbacks=[probe])  # then 2 batches of one critic + one generator step
    run.fit(model, loader(faces))
    assert probe.counts == [*((batch, 0) for batch in range(1, warmup + 1)), (warmup + 1, 1), (warmup + 2, 2)]
    assert min(forwards_at) == warmup  # the first generator forward is in the batch after the warm-up
    assert all(torch.equal(p, generator_before[name]) for name, p in probe.generator_then.items())
    assert probe.au_error_then < 0.5 * mean_au_error  # 0.014 against 0.041 for the mean AUs
    assert torch.isfinite(run.callback_metrics["d/cond"])


def test_training_under_bf16_mixed_precision(faces):
    model = small_model(critic_steps=2)
    run = trainer(max_steps=6, precision="bf16-mixed")
    run.fit(model, loader(faces))
    assert run.global_step == 6
    for key in LOGGED_TRAIN_KEYS:
        assert torch.isfinite(run.callback_metrics[key]), key
    assert next(model.generator.parameters()).dtype == torch.float32


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.parametrize("warmup", [0, 5])
def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(faces, tmp_path: Path, warmup: int):
    """Two epochs, checkpoint, two more == four straight (weights, optimiser state, step count).

    With critic_steps=3 and 2 batches per epoch the generator's cadence straddles the resume;
    so does a 5-batch critic warm-up. The lr decays from epoch 2 on. Lightning warns about a
    mid-epoch resume only because its check assumes one optimiser step per batch.
    """
    hparams = {"critic_steps": 3, "critic_warmup_steps": warmup, "epochs_constant": 1, "epochs_decay": 2}
    straight = small_model(**hparams)
    straight_run = trainer(max_epochs=4)
    straight_run.fit(straight, loader(faces))

    first = small_model(**hparams)
    first_run = trainer(max_epochs=2)
    first_run.fit(first, loader(faces))
    checkpoint = tmp_path / "half.ckpt"
    first_run.save_checkpoint(checkpoint)

    resumed = small_model(seed=123, **hparams)
    resumed_run = trainer(max_epochs=4)
    resumed_run.fit(resumed, loader(faces), ckpt_path=checkpoint)

    assert resumed_run.global_step == straight_run.global_step == 4 * 2 + (8 - warmup) // 3
    torch.testing.assert_close(resumed.state_dict(), straight.state_dict(), rtol=0, atol=0)
    for resumed_opt, straight_opt in zip(resumed_run.optimizers, straight_run.optimizers, strict=True):
        assert adam_steps(resumed_opt) == adam_steps(straight_opt)
        assert resumed_opt.param_groups[0]["lr"] == straight_opt.param_groups[0]["lr"]
        torch.testing.assert_close(resumed_opt.state_dict(), straight_opt.state_dict(), rtol=0, atol=0)


class LearningRateLog(pl.Callback):
    def __init__(self) -> None:
        self.rates: list[tuple[float, float]] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        opt_g, opt_d = trainer.optimizers
        self.rates.append((opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]))


def test_learning_rates_stay_constant_then_decay_linearly_per_epoch(faces):
    model = small_model(lr_g=2e-4, lr_d=1e-4, epochs_constant=2, epochs_decay=3)
    rates = LearningRateLog()
    trainer(max_epochs=6, callbacks=[rates]).fit(model, loader(faces, batch_size=8))
    factors = [1, 1, 1, 2 / 3, 1 / 3, 0]  # full through epoch 2, then 1 - k/3, 0 after 2 + 3 epochs
    assert [g for g, _ in rates.rates] == pytest.approx([2e-4 * f for f in factors])
    assert [d for _, d in rates.rates] == pytest.approx([1e-4 * f for f in factors])


def saturation_warnings(model: GANimation, faces, max_epochs: int) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(max_epochs=max_epochs).fit(model, loader(faces))
    return [str(w.message) for w in caught if "saturation_threshold" in str(w.message)]


def test_saturated_attention_warns_once_per_epoch(faces):
    model = small_model(critic_steps=1)
    with torch.no_grad():  # every logit is a sum of ~800 non-negative ReLU outputs: attention ~ 1, output = input
        model.generator.attention_head[0].weight.fill_(1.0)
    messages = saturation_warnings(model, faces, max_epochs=2)  # 2 generator steps per epoch
    assert len(messages) == 2
    assert "epoch 0" in messages[0] and "epoch 1" in messages[1]
    assert "AU labels" in messages[0] and "lambda_cond" in messages[0]
    assert saturation_warnings(small_model(critic_steps=1), faces, max_epochs=1) == []


def test_validation_logs_metrics_and_keeps_the_first_images(faces):
    model = small_model(critic_steps=2)
    run = trainer(max_steps=3, num_sanity_val_steps=0, val_check_interval=2)
    run.fit(model, loader(faces), loader(faces))
    assert {"val/attention_mean", "val/cycle"} <= set(run.callback_metrics)
    attention = run.callback_metrics["val/attention_mean"].item()
    assert 0 < attention < 1
    assert model.val_samples is not None
    torch.testing.assert_close(model.val_samples["image"], faces.images[:4])
    torch.testing.assert_close(model.val_samples["target_au"], faces.target_au[:4])


def test_generate_is_gradient_free_and_keeps_the_training_mode(faces):
    model = small_model()
    model.train()
    output = model.generate(faces.images[:2], faces.target_au[:2])
    assert output.image.shape == (2, 3, SIZE, SIZE) and output.attention.shape == (2, 1, SIZE, SIZE)
    assert not output.image.requires_grad
    assert model.generator.training
    torch.testing.assert_close(
        output.image,
        output.attention * faces.images[:2] + (1 - output.attention) * output.color,
    )


def test_bad_batches_and_hyperparameters_are_rejected(faces):
    model = small_model()
    batch = next(iter(loader(faces)))
    del batch["target_au"]
    with pytest.raises(KeyError, match="target_au"):
        model.validation_step(batch, 0)
    with pytest.raises(ValueError, match="critic_steps"):
        small_model(critic_steps=0)
    with pytest.raises(ValueError, match="critic_warmup_steps"):
        small_model(critic_warmup_steps=-1)
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="gp_fraction"):
            small_model(gp_fraction=share)
    with pytest.raises(ValueError, match="lambda_cycle"):
        small_model(lambda_cycle=-1.0)


# --- evaluation tools --------------------------------------------------------------------------


def test_au_error_is_the_mean_absolute_error_of_the_reader():
    images = torch.zeros(3, 3, 8, 8)
    target = torch.tensor([[0.0] * NUM_AUS, [0.5] * NUM_AUS, [1.0] * NUM_AUS])
    reader = lambda batch: torch.full((batch.shape[0], NUM_AUS), 0.25)  # noqa: E731
    assert au_error(images, target, reader) == pytest.approx((0.25 + 0.25 + 0.75) / 3)
    with pytest.raises(ValueError, match="au_reader returned"):
        au_error(images, target, lambda batch: torch.zeros(3, 4))


def test_identity_score_prefers_the_same_person_with_another_expression():
    rng = np.random.default_rng(5)
    person, stranger = random_identity(rng), random_identity(rng)
    neutral, smile = np.zeros(NUM_AUS), np.zeros(NUM_AUS)
    smile[[4, 8, 14]] = 4.0  # cheek raiser, lip corner puller, lips part
    source = face_tensor(draw_face(neutral, person, SIZE))[None]
    same = face_tensor(draw_face(smile, person, SIZE))[None]
    other = face_tensor(draw_face(smile, stranger, SIZE))[None]
    assert identity_score(source, source) == pytest.approx(1.0)
    assert identity_score(same, source) > identity_score(other, source)
    assert identity_score(same, source) > 0.95


def test_fit_face_au_regressor_returns_a_frozen_reader(faces):
    torch.manual_seed(0)
    regressor = fit_face_au_regressor(loader(faces), steps=3, regressor=FaceAURegressor(base_channels=8))
    assert not regressor.training
    assert not any(p.requires_grad for p in regressor.parameters())
    assert regressor(faces.images).shape == (8, NUM_AUS)
    with pytest.raises(ValueError, match="no batches"):
        fit_face_au_regressor([], steps=1)


# --- learning ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_makes_generated_faces_show_the_target_aus():
    """A frozen AU reader fitted on real faces reads the target AUs from trained edits far better
    than from an untrained generator's. Reader, GAN training and evaluation use disjoint faces
    (same 20 identities, different expressions); evaluation targets carry no noise."""
    torch.manual_seed(0)
    reader_faces = SyntheticFaceBatches(4096, start=10_000)
    reader = fit_face_au_regressor(
        loader(reader_faces, batch_size=32, shuffle=True),
        steps=800,
        regressor=FaceAURegressor(base_channels=16),
    )
    held_out = SyntheticFaceBatches(128, start=20_000, target_noise=0.0)
    reader_error = au_error(held_out.images, held_out.aus, reader)
    mean_guess_error = float((held_out.aus - reader_faces.aus.mean(dim=0)).abs().mean())
    copy_error = au_error(held_out.images, held_out.target_au, reader)
    assert reader_error < 0.6 * mean_guess_error

    model = small_model(**LEARNING_HPARAMS)
    untrained_error = au_error(model.generate(held_out.images, held_out.target_au).image, held_out.target_au, reader)
    start = time.perf_counter()
    trainer(max_steps=LEARNING_STEPS).fit(model, loader(SyntheticFaceBatches(1024), 8, shuffle=True))
    seconds = time.perf_counter() - start
    edited = model.generate(held_out.images, held_out.target_au).image
    trained_error = au_error(edited, held_out.target_au, reader)
    print(
        f"reader {reader_error:.4f}, copy input {copy_error:.4f}, untrained {untrained_error:.4f}, "
        f"trained {trained_error:.4f}, identity {identity_score(edited, held_out.images):.4f}, "
        f"{seconds:.0f} s"
    )
    assert trained_error < 0.7 * untrained_error
    assert trained_error < 0.85 * copy_error  # it edits, rather than returning its input
