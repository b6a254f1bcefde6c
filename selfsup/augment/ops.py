"""Batched image operations with per-sample random parameters.

Every function takes float images (B, C, H, W) in [0, 1] and a ``torch.Generator`` on the
images' device, and draws one set of parameters per sample. Grayscale inputs (C = 1) are
safe everywhere: saturation, hue and grayscale conversion leave them unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def bernoulli(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) < p


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) luma; identity for one channel."""
    if x.shape[1] == 1:
        return x
    weights = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def affine_views(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (1.0, 1.0),
                 ratio: tuple[float, float] = (1.0, 1.0), flip_p: float = 0.0, degrees: float = 0.0,
                 out_size: int | None = None) -> torch.Tensor:
    """Random resized crop, horizontal flip and rotation, composed into one resampling per image.

    The crop's area fraction is U(scale) and its aspect ratio log-uniform in ``ratio`` (as in
    torchvision's RandomResizedCrop, clipped to the image rather than retried).
    """
    b = x.shape[0]
    area = uniform(b, scale[0], scale[1], generator)
    log_ratio = uniform(b, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the side
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (1 - width) * uniform(b, -1, 1, generator)  # normalised coordinates in [-1, 1]
    centre_y = (1 - height) * uniform(b, -1, 1, generator)
    flip = torch.where(bernoulli(b, flip_p, generator), -1.0, 1.0).to(x.dtype)
    angle = uniform(b, -degrees, degrees, generator) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output -> input coordinates: crop (scale, shift) after rotation after flip
    theta = torch.stack([
        torch.stack([width * cos * flip, -width * sin, centre_x], 1),
        torch.stack([height * sin * flip, height * cos, centre_y], 1),
    ], 1).to(x.dtype)  # (B, 2, 3)
    size = out_size or x.shape[-1]
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def color_jitter(x: torch.Tensor, generator: torch.Generator, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0, p: float = 1.0) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter (torchvision's factors), applied with probability p."""
    b = x.shape[0]
    applied = bernoulli(b, p, generator).view(b, 1, 1, 1)

    def factor(magnitude: float) -> torch.Tensor:
        values = uniform(b, max(0.0, 1 - magnitude), 1 + magnitude, generator).view(b, 1, 1, 1)
        return torch.where(applied, values, torch.ones_like(values))

    out = x
    if brightness > 0:
        out = (out * factor(brightness)).clamp(0, 1)
    if contrast > 0:
        mean = to_grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * factor(contrast) + mean).clamp(0, 1)
    if x.shape[1] == 3 and saturation > 0:
        gray = to_grayscale(out)
        out = ((out - gray) * factor(saturation) + gray).clamp(0, 1)
    if x.shape[1] == 3 and hue > 0:
        shift = uniform(b, -hue, hue, generator) * applied.view(b).to(x.dtype)
        out = rotate_hue(out, shift).clamp(0, 1)
    return out


_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image's chroma by ``shift`` turns (B,) in YIQ space; a fast stand-in for HSV hue shifts."""
    to_yiq = x.new_tensor(_RGB_TO_YIQ)
    from_yiq = torch.linalg.inv(to_yiq)
    angle = shift * (2 * math.pi)
    cos, sin = torch.cos(angle), torch.sin(angle)
    ones, zeros = torch.ones_like(cos), torch.zeros_like(cos)
    rotation = torch.stack([
        torch.stack([ones, zeros, zeros], 1),
        torch.stack([zeros, cos, -sin], 1),
        torch.stack([zeros, sin, cos], 1),
    ], 1)  # (B, 3, 3)
    matrix = from_yiq @ rotation @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix, x)


def random_grayscale(x: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    if x.shape[1] == 1 or p <= 0:
        return x
    chosen = bernoulli(x.shape[0], p, generator).view(-1, 1, 1, 1)
    return torch.where(chosen, to_grayscale(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, generator: torch.Generator, sigma: tuple[float, float], p: float,
                  kernel_size: int | None = None) -> torch.Tensor:
    """Per-sample Gaussian blur (sigma ~ U(sigma)), applied with probability p; kernel ~10% of the side."""
    if p <= 0:
        return x
    b, c, h, w = x.shape
    size = kernel_size or max(3, (int(0.1 * h) // 2) * 2 + 1)
    sigmas = uniform(b, sigma[0], sigma[1], generator)
    applied = bernoulli(b, p, generator)
    radius = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    kernel = torch.exp(-(radius[None] ** 2) / (2 * sigmas[:, None] ** 2))  # (B, K)
    identity = (radius == 0).to(x.dtype).expand(b, size)
    kernel = torch.where(applied[:, None], kernel / kernel.sum(1, keepdim=True), identity)
    kernel = kernel.repeat_interleave(c, 0)  # (B*C, K)
    flat = x.reshape(1, b * c, h, w)
    pad = size // 2
    flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel.view(b * c, 1, 1, size), groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode="reflect"), kernel.view(b * c, 1, size, 1), groups=b * c)
    return flat.view(b, c, h, w)


def solarize(x: torch.Tensor, generator: torch.Generator, p: float, threshold: float = 0.5) -> torch.Tensor:
    if p <= 0:
        return x
    chosen = bernoulli(x.shape[0], p, generator).view(-1, 1, 1, 1)
    return torch.where(chosen & (x >= threshold), 1 - x, x)


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, std: float, clip: bool = True) -> torch.Tensor:
    """x + std * N(0, 1), clipped to [0, 1] (seed 002's corruption)."""
    noisy = x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return noisy.clamp(0, 1) if clip else noisy


def salt_and_pepper(x: torch.Tensor, generator: torch.Generator, amount: float) -> torch.Tensor:
    """Set a fraction ``amount`` of pixels (all channels) to 0 or 1 with equal odds."""
    b, _, h, w = x.shape
    draw = torch.rand((b, 1, h, w), generator=generator, device=x.device)
    out = torch.where(draw < amount / 2, torch.zeros_like(x), x)
    return torch.where((draw >= amount / 2) & (draw < amount), torch.ones_like(x), out)


def mask_patches(x: torch.Tensor, generator: torch.Generator, ratio: float, patch_size: int = 4) -> torch.Tensor:
    """Zero a fraction ``ratio`` of the (patch_size x patch_size) patches of each image."""
    b, _, h, w = x.shape
    grid_h, grid_w = math.ceil(h / patch_size), math.ceil(w / patch_size)
    keep = torch.rand((b, 1, grid_h, grid_w), generator=generator, device=x.device) >= ratio
    keep = keep.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)[:, :, :h, :w]
    return x * keep.to(x.dtype)
