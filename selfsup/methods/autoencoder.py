"""Autoencoders (``ae``) and denoising autoencoders (``dae``), and the base every reconstruction method shares.

encoder = backbone -> Linear bottleneck (``latent_dim``; 0 decodes the backbone features directly);
decoder = the backbone's mirror (``selfsup.decoders``), ending in logits. The representation is
the backbone's features (seed 000) or the code (seed 003), per ``representation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn as nn

from selfsup.augment.views import NOISE_MODELS, corrupt
from selfsup.backbones.contract import require
from selfsup.decoders import DECODER_KINDS, build_decoder
from selfsup.errors import ConfigError
from selfsup.losses import RECONSTRUCTION_LOSSES, reconstruction_loss
from selfsup.methods.base import Method, StepOutput, register_method
from selfsup.space import OPTIMISATION, Choice, Range, Space

REPRESENTATIONS = ("backbone", "latent")


def one_of(value: str, options: Iterable[str], key: str) -> None:
    if value not in options:
        raise ConfigError(f"params.{key} must be one of {', '.join(options)}; got {value!r}")


@dataclass(frozen=True)
class AutoencoderConfig:
    latent_dim: int = 64  # bottleneck after the backbone (seed 000's 64-d embedding); 0: decode the features
    loss: str = "mse"  # reconstruction loss: mse, bce or l1 (on the sigmoid output)
    decoder: str = "simple"  # simple or symmetric (Conv6's two decoders of seed 000; others mirror the backbone)
    representation: str = "backbone"  # what evaluation sees: backbone features or the latent code

    def __post_init__(self) -> None:
        if self.latent_dim < 0:
            raise ConfigError(f"params.latent_dim must be >= 0, got {self.latent_dim}")
        one_of(self.loss, RECONSTRUCTION_LOSSES, "loss")
        one_of(self.decoder, DECODER_KINDS, "decoder")
        one_of(self.representation, REPRESENTATIONS, "representation")


# what every autoencoder searches beside the optimisation: the code's size and what evaluation sees
CODE: Space = {"params.latent_dim": Choice((0, 64, 256)), "params.representation": Choice(("backbone", "latent"))}


class AutoencoderBase(Method):
    """Encoder, decoder and the tools every reconstruction method offers (reconstruct, errors, pictures)."""

    family = "reconstruction"
    reconstructs = True
    augments = False  # reconstructs the image it is given; the denoising and parallel ones augment
    search_space = {**OPTIMISATION, **CODE}
    code_heads = 1  # the bottleneck outputs code_heads * latent_dim values (the VAE's mean and log-variance)

    @classmethod
    def validate_run(cls, config) -> None:  # type: ignore[no-untyped-def]
        super().validate_run(config)
        require(config.backbone, "decoder_family", f"{cls.name} reconstructs images, so it")

    def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        latent = params.latent_dim
        self.bottleneck = nn.Linear(backbone.out_dim, self.code_heads * latent) if latent else nn.Identity()
        self.decoder = build_decoder(backbone, latent,
                                     context.in_channels, context.image_size, params.decoder)

    @property
    def code_dim(self) -> int:
        return self.params.latent_dim or self.backbone.out_dim

    # -- the model ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code (B, code_dim) of images in [0, 1]."""
        return self.bottleneck(self.backbone(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from codes."""
        return torch.sigmoid(self.decoder(code))

    def loss_against(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return reconstruction_loss(logits, target, self.params.loss)

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        images = self.as_input(images)
        if self.params.representation == "latent":
            return self.encode(images)
        return self.backbone(images)

    # -- the step ---------------------------------------------------------------------------
    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The encoder's input; the plain autoencoder sees the image itself."""
        return x

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return (self.corrupt(batch.images, generator),)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        (inputs,) = views
        return StepOutput(self.loss_against(self.decoder(self.encode(inputs)), batch.images))

    # -- tools --------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))

    def image_errors(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image mean squared reconstruction error (B,) of clean images: the anomaly score."""
        return (self.reconstruct(images) - images).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def reconstruction_examples(self, images: torch.Tensor, generator: torch.Generator
                                ) -> list[tuple[str, torch.Tensor]]:
        """Rows for plots/reconstructions.png: inputs, the corrupted inputs if any, outputs."""
        inputs = self.corrupt(images, generator)
        rows = [("input", images)]
        if not torch.equal(inputs, images):
            rows.append(("corrupted", inputs))
        return rows + [("reconstruction", self.reconstruct(inputs))]


@register_method("ae", family="reconstruction")
class Autoencoder(AutoencoderBase):
    summary = "autoencoder: MLP, convolutional or Conv6 encoder, mirrored decoder, MSE/BCE reconstruction"
    Config = AutoencoderConfig
    # no tuned recipe: `selfsup tune ae`'s best at the one-epoch proxy (SGD 0.12) was worse at the standard budget
    # on the validation split (monitor kNN 0.779 against 0.810; BENCHMARKS "Every method's study")


CORRUPTIONS = (*NOISE_MODELS, "augment")


@dataclass(frozen=True)
class DenoisingConfig(AutoencoderConfig):
    noise: str = "gaussian"  # gaussian, salt-and-pepper, mask, or augment (the view augmentation as D(x))
    noise_amount: float = 0.4  # gaussian std (seed 002: clip(x + 0.4 N(0, 1))), pixel fraction, or patch fraction

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.noise, CORRUPTIONS, "noise")
        if self.noise_amount < 0 or (self.noise != "gaussian" and self.noise_amount > 1):
            raise ConfigError(f"params.noise_amount must be >= 0 (a fraction <= 1 for {self.noise}), "
                              f"got {self.noise_amount}")


@register_method("dae", family="reconstruction")
class DenoisingAutoencoder(AutoencoderBase):
    summary = "denoising autoencoder: reconstruct the clean image from a noisy or augmented one"
    Config = DenoisingConfig
    augments = True  # with params.noise=augment the corruption is the view augmentation
    search_space = {**OPTIMISATION, **CODE, "params.noise": Choice(("gaussian", "mask", "salt-and-pepper")),
                    "params.noise_amount": Range(0.1, 0.6)}

    @classmethod
    def reads_augment(cls, params: DenoisingConfig) -> bool:
        return params.noise == "augment"

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.params.noise == "augment":
            return self.augment(x, generator)
        return corrupt(x, generator, self.params.noise, self.params.noise_amount)
