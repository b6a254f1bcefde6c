"""ResNet-18 with a small-image (CIFAR) stem: 3x3 conv stride 1, no max-pool (seed 001)."""

from __future__ import annotations

import torch
import torch.nn as nn

from selfsup.registry import BACKBONES


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@BACKBONES.register("resnet18")
class ResNet18(nn.Module):
    """Stages [64, 128, 256, 512] x 2 basic blocks, strides 1, 2, 2, 2, global average pool -> 512-d.

    ``small_stem`` (default) is the CIFAR stem; ``small_stem=False`` is ImageNet's 7x7/2 conv + max-pool.
    """

    decoder_family = "pooled"

    def __init__(self, in_channels: int, image_size: int, small_stem: bool = True, width: int = 64) -> None:
        super().__init__()
        if small_stem:
            stem: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)]
        else:
            stem = [nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)]
        stem += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if not small_stem:
            stem.append(nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        c_in = width
        for index, multiplier in enumerate((1, 2, 4, 8)):
            c_out = width * multiplier
            stride = 1 if index == 0 else 2
            layers += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.net = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 8 * width)
