"""Fully connected encoder on flattened pixels."""

from __future__ import annotations

import torch
import torch.nn as nn

from selfsup.backbones import BACKBONES


@BACKBONES.register("mlp")
class MLPEncoder(nn.Module):
    """Flatten -> [Linear -> ReLU] per width; the last width is the feature size."""

    def __init__(self, in_channels: int, image_size: int, widths: tuple[int, ...] = (512, 256)) -> None:
        super().__init__()
        if not widths:
            raise ValueError("mlp backbone needs at least one width")
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_channels * image_size * image_size
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU(inplace=True)]
            previous = width
        self.net = nn.Sequential(*layers)
        self.out_dim = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, widths[-1])
