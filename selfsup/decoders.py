"""Decoders that mirror each backbone, mapping a code (B, d) back to image logits (B, C, H, W).

``build_decoder`` returns an ``nn.Sequential`` of stages, innermost first; stage k from the end
inverts encoder stage k from the input (what layer-wise training pairs). The last stage
outputs logits: apply a sigmoid for images in [0, 1]. Spatial sizes are computed from the
encoder's own downsampling chain, never hard-coded, and the result is checked against the
input shape when the decoder is built.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from selfsup.errors import ConfigError
from selfsup.registry import Registry

DECODER_KINDS = ("simple", "symmetric")

# decoder family (a backbone class's ``decoder_family``, backbones/contract.py) -> factory(backbone, latent_dim,
# channels, image_size, kind) -> list of stages
DECODERS: Registry[Callable[..., list[nn.Module]]] = Registry("decoder")


class DecoderShapeError(ConfigError):
    """A decoder that cannot restore the input shape; raised when the model is built."""


def up_conv(c_in: int, c_out: int, size_in: int, size_out: int, kernel: int = 3) -> nn.ConvTranspose2d:
    """A transposed convolution taking a ``size_in`` map to ``size_out`` with no unpooling.

    Output size o = s (i - 1) + (k - 1) - 2p + p_o + 1. Same size: k3 s1 p1; from 1x1: k = size_out;
    otherwise stride 2, padding 1, the preferred kernel (3: o = 2i - 1 + p_o, 4: o = 2i + p_o)
    and an output padding of 0 or 1, falling back to the other kernel.
    """
    if size_out == size_in:
        return nn.ConvTranspose2d(c_in, c_out, 3, stride=1, padding=1)
    if size_in == 1:
        return nn.ConvTranspose2d(c_in, c_out, size_out)
    for k in (kernel, 7 - kernel):
        pad_out = size_out - (2 * size_in + k - 4)
        if pad_out in (0, 1):
            return nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=1, output_padding=pad_out)
    raise DecoderShapeError(f"no stride-2 transposed convolution maps a {size_in}x{size_in} map to "
                            f"{size_out}x{size_out}")


def _entry(latent_dim: int, feature_dim: int, shape: tuple[int, ...]) -> list[nn.Module]:
    """Code -> the encoder's last feature map: a Linear from the bottleneck (if any), then reshape."""
    stages: list[nn.Module] = []
    if latent_dim:
        stages.append(nn.Sequential(nn.Linear(latent_dim, feature_dim)))
    stages.append(nn.Sequential(nn.Unflatten(1, shape)))
    return stages


def _halvings(size: int, times: int, ceil: bool = False) -> list[int]:
    sizes = [size]
    for _ in range(times):
        sizes.append((sizes[-1] + 1) // 2 if ceil else sizes[-1] // 2)
    return sizes


@DECODERS.register("conv6")
def conv6_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int, kind: str) -> list[nn.Module]:
    """Seed 000's decoders. simple: Linear, reshape (512, s, s), ConvT 512->32, 32->32, 32->C (k4 s2 p1),
    Hardtanh between. symmetric: Linear, reshape, ConvT 512->64 (s2), 64->64 (s2), 64->32 (s1), 32->32 (s2),
    32->C (s1), k3, each inverting one Conv6 stage. Reads ``backbone.feature_shape``."""
    c, side, _ = backbone.feature_shape
    sizes = _halvings(image_size, 3)[::-1]  # e.g. 3, 7, 14, 28 (the encoder's sizes, inner first)
    entry = _entry(latent_dim, backbone.out_dim, backbone.feature_shape)
    if kind == "simple":
        widths = [c, 32, 32]
        ups = [nn.Sequential(up_conv(widths[i], widths[i + 1], sizes[i], sizes[i + 1], 4), nn.Hardtanh())
               for i in range(2)]
        return [*entry, *ups, nn.Sequential(up_conv(32, channels, sizes[2], sizes[3], 4))]
    # symmetric: the reshape joins the ConvT that inverts conv5 + pool (one stage per encoder stage)
    stages = entry[:-1]
    stages.append(nn.Sequential(nn.Unflatten(1, backbone.feature_shape), up_conv(c, 64, sizes[0], sizes[1]),
                                nn.Hardtanh()))
    stages.append(nn.Sequential(up_conv(64, 64, sizes[1], sizes[2]), nn.Hardtanh()))  # conv4 + pool
    stages.append(nn.Sequential(up_conv(64, 32, sizes[2], sizes[2]), nn.Hardtanh()))  # conv3
    stages.append(nn.Sequential(up_conv(32, 32, sizes[2], sizes[3]), nn.Hardtanh()))  # conv2 + pool
    stages.append(nn.Sequential(up_conv(32, channels, sizes[3], sizes[3])))  # conv1
    return stages


def _mlp_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int, kind: str) -> list[nn.Module]:
    """The mirror of the MLP: (Linear from the code,) then Linear + ReLU per width in reverse, then a Linear
    to the pixels and a reshape. Stage k from the end inverts encoder layer k. Reads ``backbone.widths`` and
    ``backbone.input_dim``."""
    widths = list(backbone.widths)
    stages: list[nn.Module] = []
    if latent_dim:
        stages.append(nn.Sequential(nn.Linear(latent_dim, widths[-1])))
    targets = widths[::-1][1:] + [backbone.input_dim]
    for i, (width_in, width_out) in enumerate(zip(widths[::-1], targets)):
        last = i == len(widths) - 1
        layer = nn.Linear(width_in, width_out)
        stages.append(nn.Sequential(layer, nn.Unflatten(1, (channels, image_size, image_size))) if last
                      else nn.Sequential(layer, nn.ReLU(inplace=True)))
    return stages


DECODERS.register("mlp")(_mlp_decoder)


@DECODERS.register("conv3")
def conv3_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int, kind: str) -> list[nn.Module]:
    """Seed 002's MNIST decoder: ConvT 64->32 (k = side, from 1x1), ReLU, ConvT 32->16 (s2), ReLU, ConvT 16->C."""
    width = backbone.out_dim // 4
    sizes = _halvings(image_size, 2, ceil=True)[::-1]  # 7, 14, 28
    entry = _entry(latent_dim, backbone.out_dim, (backbone.out_dim, 1, 1))
    return [*entry,
            nn.Sequential(up_conv(4 * width, 2 * width, 1, sizes[0]), nn.ReLU(inplace=True)),
            nn.Sequential(up_conv(2 * width, width, sizes[0], sizes[1]), nn.ReLU(inplace=True)),
            nn.Sequential(up_conv(width, channels, sizes[1], sizes[2]))]


@DECODERS.register("convpool")
def convpool_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int, kind: str
                     ) -> list[nn.Module]:
    """Seed 003's mirrored deep conv decoder: central -> flat/2 -> flat (ReLU), reshape, then a transposed
    convolution per encoder conv (stride 2 where the encoder pooled, stride 1 where it did not). Reads
    ``backbone.flat``, ``.feature_shape``, ``.channels`` and ``.sides``."""
    flat = backbone.flat
    stages: list[nn.Module] = []
    if latent_dim:
        stages.append(nn.Sequential(nn.Linear(latent_dim, backbone.out_dim)))
    stages.append(nn.Sequential(nn.Linear(backbone.out_dim, flat // 2), nn.ReLU(inplace=True),
                                nn.Linear(flat // 2, flat), nn.ReLU(inplace=True),
                                nn.Unflatten(1, backbone.feature_shape)))
    widths = list(backbone.channels[::-1]) + [channels]
    sides = backbone.sides[::-1] + [image_size] * (len(widths) - len(backbone.sides))
    for i in range(len(widths) - 1):
        conv = up_conv(widths[i], widths[i + 1], sides[i], sides[i + 1])
        last = i == len(widths) - 2
        stages.append(nn.Sequential(conv) if last else nn.Sequential(conv, nn.ReLU(inplace=True)))
    return stages


@DECODERS.register("pooled")
def pooled_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int, kind: str
                     ) -> list[nn.Module]:
    """For pooled backbones (conv6-bn, resnet18): Linear to (128, s/8, s/8), then three stride-2 transposed
    convolutions 128 -> 64 -> 32 -> C with BatchNorm + ReLU."""
    sizes = _halvings(image_size, 3)[::-1]
    shape = (128, sizes[0], sizes[0])
    stages: list[nn.Module] = [nn.Sequential(nn.Linear(latent_dim or backbone.out_dim, 128 * sizes[0] ** 2),
                                             nn.ReLU(inplace=True), nn.Unflatten(1, shape))]
    widths = [128, 64, 32]
    for i in range(2):
        stages.append(nn.Sequential(up_conv(widths[i], widths[i + 1], sizes[i], sizes[i + 1], 4),
                                    nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)))
    stages.append(nn.Sequential(up_conv(32, channels, sizes[2], sizes[3], 4)))
    return stages


def build_decoder(backbone: nn.Module, latent_dim: int, channels: int, image_size: int,
                  kind: str = "simple") -> nn.Sequential:
    """The decoder of ``backbone``'s ``decoder_family``, checked to restore (C, H, W)."""
    if kind not in DECODER_KINDS:
        raise ConfigError(f"unknown decoder {kind!r}; valid: {', '.join(DECODER_KINDS)}")
    family = getattr(backbone, "decoder_family", None)
    if family is None:
        raise ConfigError(f"{type(backbone).__name__} has no decoder (no decoder_family); reconstruction methods "
                          "need one (backbones/contract.py)")
    decoder = nn.Sequential(*DECODERS.get(family)(backbone, latent_dim, channels, image_size, kind))
    with torch.no_grad():
        was_training = decoder.training
        decoder.eval()
        shape = tuple(decoder(torch.zeros(1, latent_dim or backbone.out_dim)).shape[1:])
        decoder.train(was_training)
    if shape != (channels, image_size, image_size):
        raise DecoderShapeError(f"the {kind} decoder for {type(backbone).__name__} outputs {shape} but the input is "
                                f"{(channels, image_size, image_size)}")
    return decoder
