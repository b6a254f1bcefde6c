"""Encoders: ``create_backbone(name, in_channels=..., image_size=...)`` returns an ``nn.Module``
mapping (B, C, H, W) images in [0, 1] to (B, out_dim) features, with ``.out_dim`` set; ``contract.py`` says what
else a backbone may provide (stages, linear layers, a mirrored decoder) and how methods ask for it."""

from __future__ import annotations

import torch.nn as nn

from selfsup.registry import BACKBONES

MIN_IMAGE_SIZE = 8


def create_backbone(name: str, in_channels: int = 3, image_size: int = 32, **kwargs: object) -> nn.Module:
    """Build a registered backbone; ``kwargs`` go to its constructor (e.g. ``widths`` for ``mlp``)."""
    factory = BACKBONES.get(name)
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"backbone {name!r}: images must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    if in_channels < 1:
        raise ValueError(f"backbone {name!r}: in_channels must be >= 1, got {in_channels}")
    model = factory(in_channels=in_channels, image_size=image_size, **kwargs)
    if not isinstance(getattr(model, "out_dim", None), int):
        raise TypeError(f"backbone {name!r} does not report its feature size as .out_dim")
    return model


from selfsup.backbones import conv6, mlp, resnet  # noqa: E402,F401  (registration)

__all__ = ["BACKBONES", "MIN_IMAGE_SIZE", "create_backbone"]
