"""Variational autoencoder (Kingma and Welling 2014) with a beta weight on the KL and optional warm-up."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.errors import ConfigError
from selfsup.losses import gaussian_kl, reconstruction_loss
from selfsup.methods.autoencoder import AutoencoderBase, AutoencoderConfig
from selfsup.methods.base import StepOutput, register_method
from selfsup.space import OPTIMISATION, Choice, Range


@dataclass(frozen=True)
class VAEConfig(AutoencoderConfig):
    representation: str = "latent"  # the posterior mean mu is the representation (seed 004)
    beta: float = 1.0  # weight of KL(q(z|x) || N(0, I)); beta > 1 is the beta-VAE
    beta_warmup: float = 0.0  # fraction of training over which the KL weight rises linearly from 0 to beta

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_dim < 1:
            raise ConfigError("params.latent_dim must be >= 1 for the VAE (the size of z)")
        if self.beta < 0:
            raise ConfigError(f"params.beta must be >= 0, got {self.beta}")
        if not 0 <= self.beta_warmup <= 1:
            raise ConfigError(f"params.beta_warmup must be a fraction in [0, 1], got {self.beta_warmup}")


@register_method("vae", family="reconstruction")
class VAE(AutoencoderBase):
    summary = "variational autoencoder: reparameterised Gaussian code, beta * KL to N(0, I), sampling"
    Config = VAEConfig
    # the representation is searchable: the seed's posterior mean is the default, but on the colour folder the same
    # checkpoint's backbone features probe 28 points higher (bench/representation_check.py)
    search_space = {**OPTIMISATION, "params.latent_dim": Choice((16, 64, 256)),
                    "params.beta": Range(0.1, 4.0, log=True), "params.beta_warmup": Range(0.0, 0.5),
                    "params.representation": Choice(("latent", "backbone"))}
    code_heads = 2  # the bottleneck gives mu and log sigma^2

    def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        self.kl_weight = params.beta

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.bottleneck(self.backbone(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]  # the mean: interpolation, reconstruction and the representation use it

    def begin_step(self, step: int, total_steps: int) -> None:
        warmup = self.params.beta_warmup * total_steps
        self.kl_weight = self.params.beta * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        eps = torch.randn((batch.images.shape[0], self.params.latent_dim), generator=generator,
                          device=generator.device)
        return batch.images, eps

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        images, eps = views
        mu, logvar = self.posterior(images)
        z = mu + torch.exp(0.5 * logvar) * eps  # the reparameterisation trick
        reconstruction = reconstruction_loss(self.decoder(z), images, self.params.loss, reduction="sum")
        kl = gaussian_kl(mu, logvar)
        return StepOutput(reconstruction + self.kl_weight * kl, {"reconstruction": reconstruction.item(),
                                                                  "kl": kl.item()})

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images decoded from z ~ N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn((n, self.params.latent_dim), generator=generator, device=device)
        return self.decode(z)
