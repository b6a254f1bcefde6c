import pytest
import torch

from selfsup.augment import ViewAugment, corrupt, ops
from selfsup.config import AugmentConfig

FULL = AugmentConfig(blur_p=0.5, solarize_p=0.2, rotation_degrees=15)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_views_keep_shape_and_range(channels: int) -> None:
    x = torch.rand(16, channels, 28, 28)
    view = ViewAugment(FULL)(x, gen())
    assert view.shape == x.shape
    assert view.min() >= 0 and view.max() <= 1


def test_views_differ_per_sample_and_per_call() -> None:
    x = torch.rand(1, 3, 16, 16).expand(8, 3, 16, 16).contiguous()  # the same image eight times
    augment = ViewAugment(FULL)
    g = gen()
    first, second = augment(x, g), augment(x, g)
    assert not torch.allclose(first[0], first[1])  # per-sample parameters
    assert not torch.allclose(first, second)  # fresh views every call


def test_same_seed_same_views() -> None:
    x = torch.rand(8, 3, 16, 16)
    augment = ViewAugment(FULL)
    assert torch.equal(augment(x, gen(3)), augment(x, gen(3)))


def test_strength_zero_is_the_identity() -> None:
    x = torch.rand(8, 3, 16, 16)
    augment = ViewAugment(AugmentConfig(strength=0.0, blur_p=1.0, solarize_p=1.0, rotation_degrees=90))
    assert torch.equal(augment(x, gen()), x)


def test_strength_scales_the_change() -> None:
    x = torch.rand(64, 3, 16, 16)
    changes = [(ViewAugment(AugmentConfig(strength=s))(x, gen()) - x).abs().mean().item() for s in (0.1, 0.5, 1.0)]
    assert changes[0] < changes[1] < changes[2]


def test_full_crop_without_flip_resamples_exactly() -> None:
    x = torch.rand(4, 1, 12, 12)
    assert torch.allclose(ops.affine_views(x, gen()), x, atol=1e-5)


def test_flip_mirrors_horizontally() -> None:
    x = torch.rand(4, 1, 12, 12)
    assert torch.allclose(ops.affine_views(x, gen(), flip_p=1.0), x.flip(-1), atol=1e-5)


def test_grayscale_ops_are_safe_on_one_channel() -> None:
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(ops.random_grayscale(x, gen(), 1.0), x)
    out = ops.color_jitter(x, gen(), 0.0, 0.0, 0.5, 0.2)  # saturation and hue only: nothing to change
    assert torch.equal(out, x)


def test_random_grayscale_makes_channels_equal() -> None:
    x = torch.rand(4, 3, 8, 8)
    out = ops.random_grayscale(x, gen(), 1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


def test_hue_rotation_by_a_full_turn_is_the_identity() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(ops.rotate_hue(x, torch.ones(2)), x, atol=1e-5)


def test_blur_preserves_a_constant_image_and_smooths_noise() -> None:
    constant = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(ops.gaussian_blur(constant, gen(), (1.0, 1.0), 1.0), constant, atol=1e-6)
    noise = torch.rand(2, 3, 16, 16)
    assert ops.gaussian_blur(noise, gen(), (1.5, 1.5), 1.0).std() < noise.std()


def test_solarize_inverts_bright_pixels() -> None:
    x = torch.tensor([0.2, 0.7]).view(1, 1, 1, 2)
    assert torch.allclose(ops.solarize(x, gen(), 1.0, 0.5), torch.tensor([0.2, 0.3]).view(1, 1, 1, 2))


@pytest.mark.parametrize("kind,amount", [("gaussian", 0.4), ("salt-and-pepper", 0.2), ("mask", 0.5)])
def test_corruptions_change_images_and_stay_in_range(kind: str, amount: float) -> None:
    x = torch.full((4, 1, 16, 16), 0.5)
    out = corrupt(x, gen(), kind, amount)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert out.min() >= 0 and out.max() <= 1


def test_salt_and_pepper_fraction() -> None:
    x = torch.full((8, 1, 64, 64), 0.5)
    changed = (corrupt(x, gen(), "salt-and-pepper", 0.1) != 0.5).float().mean().item()
    assert changed == pytest.approx(0.1, abs=0.02)


def test_unknown_noise_model_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="gaussian"):
        corrupt(torch.rand(1, 1, 4, 4), gen(), "speckle", 0.1)


def test_asymmetric_views_solarize_the_second_view_only() -> None:
    """BYOL's asymmetric pair: augment.second_solarize_p reaches the second view and leaves the first alone."""
    x = torch.rand(6, 1, 12, 12)
    plain = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter=(0.0, 0.0, 0.0, 0.0),
                 grayscale_p=0.0)
    first, second = ViewAugment(AugmentConfig(**plain, second_solarize_p=1.0)).pair(x, gen())
    assert torch.allclose(first, x, atol=1e-5)
    inverted = x.clone()
    inverted[x >= 0.5] = 1 - x[x >= 0.5]  # solarization at 0.5, written out
    assert torch.allclose(second, inverted, atol=1e-5)


def test_symmetric_views_draw_exactly_as_before() -> None:
    """Without second_* the second view is the same recipe drawing from the same generator: runs reproduce."""
    x = torch.rand(8, 3, 16, 16)
    augment = ViewAugment(FULL)
    assert augment.second is augment
    g = gen(5)
    expected = (augment(x, g), augment(x, g))
    assert all(torch.equal(a, b) for a, b in zip(augment.pair(x, gen(5)), expected, strict=True))


def test_a_second_view_probability_out_of_range_is_refused() -> None:
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match="second_blur_p"):
        AugmentConfig(second_blur_p=1.5)
