"""GANimation generator and critic: shapes, mask semantics, parameter counts, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from cause_pl.au import NUM_AUS
from cause_pl.nets.ganimation import GANimationCritic, GANimationGenerator, GeneratorOutput
from tests.builders.ganimation_reference import tiled_forward

# Parameter counts of the official GANimation model at 128 px and 17 AUs (docs/design.md, "GANimation").
OFFICIAL_GENERATOR_PARAMS = 8.47e6
OFFICIAL_CRITIC_PARAMS = 44.9e6


def face_like_images(batch: int, height: int, width: int | None = None) -> torch.Tensor:
    """Smooth images in [-1, 1]: a bright ellipse ("face") on a colour gradient per sample."""
    width = width or height
    ys = torch.linspace(-1, 1, height)[:, None]
    xs = torch.linspace(-1, 1, width)[None, :]
    images = []
    for index in range(batch):
        shift = 0.2 * index
        face = ((xs - shift) ** 2 / 0.4 + ys**2 / 0.6 < 1).float()
        channels = [0.8 * face - 0.4 + 0.3 * xs, 0.6 * face - 0.3 + 0.3 * ys, 0.4 * face - 0.5]
        images.append(torch.stack(channels))
    return torch.stack(images).clamp(-1, 1)


def au_vectors(batch: int, cond_dim: int = NUM_AUS, seed: int = 0) -> torch.Tensor:
    """AU intensities on the 0..1 scale the generator is trained with (OpenFace 0..5 over 5)."""
    return torch.rand(batch, cond_dim, generator=torch.Generator().manual_seed(seed))


def small_generator(**overrides: int) -> GANimationGenerator:
    torch.manual_seed(0)
    config = {"image_size": 32, "base_channels": 16, "num_res_blocks": 2, **overrides}
    return GANimationGenerator(**config)


def count_params(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def expected_generator_params(cond_dim: int, base: int, num_down: int, num_res_blocks: int) -> int:
    """Hand count from the architecture: bias-free convs, affine InstanceNorm (2 params/channel)."""
    total = (3 + cond_dim) * base * 7 * 7 + 2 * base
    width = base
    for _ in range(num_down):
        total += width * 2 * width * 4 * 4 + 2 * (2 * width)
        width *= 2
    total += num_res_blocks * 2 * (width * width * 3 * 3 + 2 * width)
    for _ in range(num_down):
        total += width * (width // 2) * 4 * 4 + 2 * (width // 2)
        width //= 2
    return total + width * 3 * 7 * 7 + width * 1 * 7 * 7


def expected_critic_params(image_size: int, cond_dim: int, base: int, num_layers: int, cap: int) -> int:
    """Hand count: 4x4 convs with bias, bias-free 3x3 realness head and full-map AU head."""
    total, in_channels = 0, 3
    for level in range(num_layers):
        out_channels = min(base * 2**level, cap)
        total += in_channels * out_channels * 4 * 4 + out_channels
        in_channels = out_channels
    final_size = image_size // 2**num_layers
    return total + in_channels * 3 * 3 + in_channels * cond_dim * final_size**2


@pytest.fixture(scope="module")
def generator_128_output() -> tuple[torch.Tensor, GeneratorOutput]:
    torch.manual_seed(0)
    generator = GANimationGenerator()
    images = face_like_images(2, 128)
    with torch.no_grad():
        return images, generator(images, au_vectors(2))


@pytest.mark.parametrize(("height", "width"), [(32, 32), (16, 40)])
def test_generator_equals_the_tiled_condition_formulation(height: int, width: int) -> None:
    """The untiled input conv and the fused heads give what GANimation defines: the condition
    tiled over H x W behind the image, one trunk, two separate heads (float64, so only rounding differs)."""
    generator = small_generator(num_down=2).double()
    for module in generator.modules():  # non-trivial norm parameters, so every term is exercised
        if isinstance(module, torch.nn.InstanceNorm2d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.5, 0.5)
    images = face_like_images(3, height, width).double()
    cond = au_vectors(3).double()
    output, reference = generator(images, cond), tiled_forward(generator, images, cond)
    for name in GeneratorOutput._fields:
        torch.testing.assert_close(getattr(output, name), getattr(reference, name), rtol=0, atol=1e-12)


def test_generator_at_128px_gives_masks_in_range_and_the_composite(generator_128_output) -> None:
    images, output = generator_128_output
    assert output.image.shape == (2, 3, 128, 128)
    assert output.attention.shape == (2, 1, 128, 128)
    assert output.color.shape == (2, 3, 128, 128)
    assert output.attention.min() > 0 and output.attention.max() < 1
    assert output.color.min() >= -1 and output.color.max() <= 1
    attention, color = output.attention, output.color
    assert torch.equal(output.image, attention * images + (1 - attention) * color)
    assert output.image.min() >= -1 and output.image.max() <= 1


def test_attention_of_one_keeps_the_input_pixel() -> None:
    generator = small_generator()
    with torch.no_grad():
        generator.color_head[0].weight.zero_()  # colour mask becomes tanh(0) = 0
        images = face_like_images(2, 32)
        output = generator(images, au_vectors(2))
    assert torch.equal(output.color, torch.zeros_like(output.color))
    torch.testing.assert_close(output.image, output.attention * images)


def test_condition_changes_the_output() -> None:
    generator = small_generator()
    images = face_like_images(1, 32).expand(2, -1, -1, -1)
    conds = torch.stack([torch.zeros(NUM_AUS), torch.ones(NUM_AUS)])
    with torch.no_grad():
        output = generator(images, conds)
    assert (output.image[0] - output.image[1]).abs().max() > 1e-3
    assert (output.attention[0] - output.attention[1]).abs().max() > 1e-4


@pytest.mark.parametrize(("height", "width", "num_down"), [(32, 32, 2), (64, 64, 2), (32, 48, 2), (24, 40, 3)])
def test_generator_small_sizes_batch_of_one(height: int, width: int, num_down: int) -> None:
    generator = small_generator(num_down=num_down, image_size=8 * 2**num_down)
    output = generator(face_like_images(1, height, width), au_vectors(1))
    assert output.image.shape == (1, 3, height, width)
    assert output.attention.shape == (1, 1, height, width)
    assert torch.isfinite(output.image).all()


def test_parameter_counts_match_the_official_model() -> None:
    with torch.device("meta"):
        generator = GANimationGenerator()
        critic = GANimationCritic()
        capped = GANimationCritic(image_size=64, cond_dim=5, base_channels=16, num_layers=5, max_channels=64)
    generator_params, critic_params = count_params(generator), count_params(critic)
    assert generator_params == expected_generator_params(NUM_AUS, 64, 2, 6)
    assert critic_params == expected_critic_params(128, NUM_AUS, 64, 6, 2048)
    assert abs(generator_params - OFFICIAL_GENERATOR_PARAMS) / OFFICIAL_GENERATOR_PARAMS < 0.01
    assert abs(critic_params - OFFICIAL_CRITIC_PARAMS) / OFFICIAL_CRITIC_PARAMS < 0.01
    assert count_params(capped) == expected_critic_params(64, 5, 16, 5, 64)


def test_critic_at_128px_gives_a_2x2_map_and_au_vector() -> None:
    torch.manual_seed(0)
    critic = GANimationCritic()
    with torch.no_grad():
        realness, aus = critic(face_like_images(2, 128))
    assert realness.shape == (2, 1, 2, 2)
    assert aus.shape == (2, NUM_AUS)
    assert torch.isfinite(realness).all() and torch.isfinite(aus).all()


@pytest.mark.parametrize(("num_layers", "map_size"), [(3, 4), (5, 1)])
def test_critic_batch_of_one_keeps_its_batch_dim(num_layers: int, map_size: int) -> None:
    critic = GANimationCritic(image_size=32, cond_dim=5, base_channels=16, num_layers=num_layers)
    realness, aus = critic(face_like_images(1, 32))
    assert realness.shape == (1, 1, map_size, map_size)
    assert aus.shape == (1, 5)


def test_gradient_penalty_double_backward_through_the_critic() -> None:
    torch.manual_seed(0)
    critic = GANimationCritic(image_size=32, base_channels=16, num_layers=4)
    real, fake = face_like_images(2, 32), torch.rand(2, 3, 32, 32) * 2 - 1
    mix = torch.rand(2, 1, 1, 1)
    interpolated = (mix * real + (1 - mix) * fake).requires_grad_(True)
    realness, _ = critic(interpolated)
    (gradient,) = torch.autograd.grad(realness.sum(), interpolated, create_graph=True)
    penalty = ((gradient.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    first_conv_grad = critic.trunk[0].weight.grad
    assert first_conv_grad is not None and torch.isfinite(first_conv_grad).all()
    assert first_conv_grad.abs().sum() > 0


def test_channels_last_gives_the_same_result() -> None:
    generator = small_generator()
    critic = GANimationCritic(image_size=32, base_channels=16, num_layers=4)
    images, conds = face_like_images(2, 32), au_vectors(2)
    with torch.no_grad():
        reference = generator(images, conds).image
        reference_realness, reference_aus = critic(images)
        generator.to(memory_format=torch.channels_last)
        critic.to(memory_format=torch.channels_last)
        images_cl = images.to(memory_format=torch.channels_last)
        output = generator(images_cl, conds).image
        torch.testing.assert_close(output, reference, atol=1e-5, rtol=1e-4)
        realness, aus = critic(images_cl)
    torch.testing.assert_close(realness, reference_realness, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(aus, reference_aus, atol=1e-5, rtol=1e-4)


def test_forward_under_bf16_autocast() -> None:
    generator = small_generator()
    critic = GANimationCritic(image_size=32, base_channels=16, num_layers=4)
    images, conds = face_like_images(2, 32), au_vectors(2)
    with torch.no_grad():
        reference = generator(images, conds).image
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = generator(images, conds)
            realness, aus = critic(output.image)
    assert output.image.shape == (2, 3, 32, 32) and torch.isfinite(output.image).all()
    assert (output.image.float() - reference).abs().max() < 0.1
    assert realness.shape == (2, 1, 2, 2) and aus.shape == (2, NUM_AUS)
    assert torch.isfinite(realness.float()).all() and torch.isfinite(aus.float()).all()


@pytest.mark.parametrize(
    ("images", "conds", "message"),
    [
        (face_like_images(2, 32), au_vectors(2, cond_dim=16), "cond must have shape"),
        (face_like_images(2, 32), au_vectors(3), "cond must have shape"),
        (face_like_images(2, 32), au_vectors(2)[0], "cond must have shape"),
        (face_like_images(2, 32)[:, :1], au_vectors(2), r"image must have shape \(B, 3, H, W\)"),
        (face_like_images(2, 32)[0], au_vectors(2), r"image must have shape \(B, 3, H, W\)"),
        (face_like_images(2, 30), au_vectors(2), "divisible by 2\\*\\*num_down=4"),
    ],
)
def test_generator_rejects_bad_inputs(images: torch.Tensor, conds: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_generator()(images, conds)


def test_generator_rejects_integer_images() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        small_generator()(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), au_vectors(1))


def test_critic_rejects_bad_inputs() -> None:
    critic = GANimationCritic(image_size=32, base_channels=16, num_layers=4)
    with pytest.raises(ValueError, match="must be 32x32"):
        critic(face_like_images(1, 64))
    with pytest.raises(ValueError, match=r"image must have shape \(B, 3, H, W\)"):
        critic(torch.zeros(1, 4, 32, 32))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GANimationCritic(image_size=100), r"image_size=100 must be divisible by 2\*\*num"),
        (lambda: GANimationCritic(image_size=32, num_layers=6), r"divisible by 2\*\*num_layers=64"),
        (lambda: GANimationCritic(num_layers=0), "num_layers must be >= 1"),
        (lambda: GANimationGenerator(image_size=30), "divisible by 2\\*\\*num_down=4"),
        (lambda: GANimationGenerator(base_channels=0), "base_channels must be >= 1"),
        (lambda: GANimationGenerator(cond_dim=0), "cond_dim must be >= 1"),
    ],
)
def test_constructors_reject_bad_configurations(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
