"""Conv6 (seed 000) and a BatchNorm + ReLU variant with global pooling."""

from __future__ import annotations

import torch
import torch.nn as nn

from selfsup.registry import BACKBONES


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1)
    nn.init.xavier_normal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


@BACKBONES.register("conv6")
class Conv6(nn.Module):
    """conv 3->32, Hardtanh; conv 32->32, pool; conv 32->64, Hardtanh; conv 64->64, pool; conv 64->512, pool; flatten.

    As in seed 000's thesis code (Xavier-normal init, zero bias). The representation is the
    flattened 512 x (H/8) x (W/8) map: 8192-d at 32 px, 4608-d at 28 px (computed, not hard-coded).
    """

    decoder_family = "conv6"

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(in_channels, 32), nn.Hardtanh(),
            _conv(32, 32), nn.MaxPool2d(2),
            _conv(32, 64), nn.Hardtanh(),
            _conv(64, 64), nn.MaxPool2d(2),
            _conv(64, 512), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = image_size // 2 // 2 // 2
        self.feature_shape = (512, side, side)  # decoder hint
        self.out_dim = 512 * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 512 * side * side)

    def stages(self) -> list[nn.Module]:
        """The five conv stages (conv [+ Hardtanh] [+ pool]), outermost first, for layer-wise training."""
        f = self.features
        return [f[0:2], f[2:4], f[4:6], f[6:8], f[8:11]]


@BACKBONES.register("conv6-bn")
class Conv6BN(nn.Module):
    """Conv6 with BatchNorm + ReLU after every conv and global average pooling: a compact 512-d feature."""

    decoder_family = "pooled"

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
            *block(64, 512), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 512)


@BACKBONES.register("conv3")
class Conv3(nn.Module):
    """Seed 002's MNIST encoder: conv c->16 (k3 s2 p1), ReLU, conv 16->32 (k3 s2 p1), ReLU, conv 32->64 (k = side).

    28 -> 14 -> 7 -> 1: a 64-d feature, tiny and fast; the last kernel covers the whole remaining map.
    """

    decoder_family = "conv3"

    def __init__(self, in_channels: int, image_size: int, width: int = 16) -> None:
        super().__init__()
        side = (image_size + 1) // 2
        side = (side + 1) // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 4 * width, side), nn.Flatten(),
        )
        self.out_dim = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, 4 * width)


@BACKBONES.register("convpool")
class ConvPool(nn.Module):
    """Seed 003's deep convolutional autoencoder encoder: conv (k3, same) + ReLU per channel width, a 2x2
    max-pool after each conv while the side is above 3, then a fully connected bottleneck flat -> flat/2 ->
    ``central`` with ReLU. The representation is the ``central``-d code (100 by default)."""

    decoder_family = "convpool"

    def __init__(self, in_channels: int, image_size: int, channels: tuple[int, ...] = (10, 20, 50),
                 central: int = 100) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous, side = in_channels, image_size
        self.sides = [side]
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(inplace=True)]
            if side > 3:
                layers.append(nn.MaxPool2d(2))
                side //= 2
                self.sides.append(side)
            previous = width
        self.feature_shape = (previous, side, side)
        flat = previous * side * side
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(flat, flat // 2), nn.ReLU(inplace=True), nn.Linear(flat // 2, central),
                                nn.ReLU(inplace=True))
        self.channels = tuple(channels)
        self.flat = flat
        self.out_dim = central

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # (B, central)
