"""View recipes: the configured augmentation, scaled by one ``strength`` knob, and noise models."""

from __future__ import annotations

import dataclasses
import math

import torch

from selfsup.augment import ops
from selfsup.config import AugmentConfig


class ViewAugment:
    """Draws random views of a batch: crop/flip/rotate, colour jitter, grayscale, blur, solarize.

    ``strength`` in [0, 1] interpolates every magnitude and probability between the identity
    (0) and the configured recipe (1), as seed 000's strength experiments need.
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        s = config.strength
        self.identity = s == 0
        self.scale = (1 - s * (1 - config.crop_scale[0]), 1 - s * (1 - config.crop_scale[1]))
        self.ratio = (math.exp(s * math.log(config.crop_ratio[0])), math.exp(s * math.log(config.crop_ratio[1])))
        self.flip_p = s * config.flip_p
        self.degrees = s * config.rotation_degrees
        self.jitter = tuple(s * j for j in config.jitter)
        self.grayscale_p = s * config.grayscale_p
        self.blur_p = s * config.blur_p
        self.solarize_p = s * config.solarize_p
        # the second global view: this recipe, or its asymmetric twin (augment.second_blur_p, second_solarize_p)
        second = {name: value for name in ("blur_p", "solarize_p")
                  if (value := getattr(config, f"second_{name}")) is not None}
        self.second = self if not second else ViewAugment(
            dataclasses.replace(config, second_blur_p=None, second_solarize_p=None, **second))

    def pair(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The two global views of ``x``: the first from this recipe, the second from ``second``."""
        return self(x, generator), self.second(x, generator)

    def with_crop_scale(self, scale: tuple[float, float]) -> ViewAugment:
        """The same recipe with another crop area range (multi-crop's small crops)."""
        return ViewAugment(dataclasses.replace(self.config, crop_scale=scale))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One random view per image of ``x`` (B, C, H, W) float in [0, 1]."""
        if self.identity:
            return x
        out = ops.affine_views(x, generator, self.scale, self.ratio, self.flip_p, self.degrees)
        if any(j > 0 for j in self.jitter):
            out = ops.color_jitter(out, generator, *self.jitter, p=self.config.jitter_p)
        out = ops.random_grayscale(out, generator, self.grayscale_p)
        out = ops.gaussian_blur(out, generator, self.config.blur_sigma, self.blur_p)
        out = ops.solarize(out, generator, self.solarize_p, self.config.solarize_threshold)
        return out.clamp_(0, 1)


# name -> corruption(x, generator, amount); amount is a std, a pixel fraction or a patch fraction
NOISE_MODELS = {
    "gaussian": ops.gaussian_noise,
    "salt-and-pepper": ops.salt_and_pepper,
    "mask": ops.mask_patches,
}


def corrupt(x: torch.Tensor, generator: torch.Generator, kind: str, amount: float) -> torch.Tensor:
    """A denoising corruption of ``x``; ``none`` or amount 0 returns it unchanged."""
    if kind == "none" or amount == 0:
        return x
    if kind not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {kind!r}; valid: none, {', '.join(NOISE_MODELS)}")
    return NOISE_MODELS[kind](x, generator, amount)
