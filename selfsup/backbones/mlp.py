"""Fully connected encoders on flattened pixels: ``mlp``, ``mlp-shallow`` and ``mlp-deep`` (seed 003)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from selfsup.registry import BACKBONES


class MLPEncoder(nn.Module):
    """Flatten -> [Linear -> ReLU] per width; the last width is the feature size."""

    decoder_family = "mlp"

    def __init__(self, in_channels: int, image_size: int, widths: tuple[int, ...] = (512, 256)) -> None:
        super().__init__()
        if not widths:
            raise ValueError("mlp backbone needs at least one width")
        self.widths = tuple(widths)
        self.input_dim = in_channels * image_size * image_size
        layers: list[nn.Module] = [nn.Flatten()]
        previous = self.input_dim
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU(inplace=True)]
            previous = width
        self.net = nn.Sequential(*layers)
        self.out_dim = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, widths[-1])

    def stages(self) -> list[nn.Module]:
        """One stage per Linear + ReLU (the first also flattens), for layer-wise training."""
        modules = list(self.net)
        return [nn.Sequential(*modules[:3])] + [nn.Sequential(*modules[i : i + 2]) for i in range(3, len(modules), 2)]

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]


BACKBONES.register("mlp")(MLPEncoder)
BACKBONES.register("mlp-shallow")(partial(MLPEncoder, widths=(200,)))  # seed 003's shallow AE-200
BACKBONES.register("mlp-deep")(partial(MLPEncoder, widths=(500, 200, 100, 10)))  # seed 003's deep AE
