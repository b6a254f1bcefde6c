"""Contractive autoencoder (Rifai et al. 2011): reconstruction + lambda ||d code / d x||_F^2.

The decoder's entry layer is tied to the bottleneck (W_dec = W_bottleneck^T, as in Rifai et al. and seed 003's
contractive autoencoder). Untied, the penalty means nothing: scaling the code by c and the decoder's entry by 1/c
leaves the reconstruction as it was and divides the penalty by c^2, so the optimiser can shrink it at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from selfsup.backbones.contract import require
from selfsup.errors import ConfigError
from selfsup.losses import dense_jacobian_penalty, jacobian_penalty, weight_product_penalty
from selfsup.methods.autoencoder import AutoencoderBase, AutoencoderConfig, one_of
from selfsup.methods.base import StepOutput, register_method
from selfsup.space import OPTIMISATION, Choice, Range


@dataclass(frozen=True)
class ContractiveConfig(AutoencoderConfig):
    contractive_weight: float = 0.01  # lambda
    penalty: str = "jacobian"  # jacobian: ||J||_F^2 of the code; weights: seed 003's ||W_L ... W_1||_F
    projections: int = 1  # jacobian on deep encoders: Hutchinson estimate with this many vectors; 0 = exact

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.penalty, ("jacobian", "weights"), "penalty")
        if self.contractive_weight < 0:
            raise ConfigError(f"params.contractive_weight must be >= 0, got {self.contractive_weight}")
        if self.projections < 0:
            raise ConfigError(f"params.projections must be >= 0, got {self.projections}")


class TiedLinear(nn.Module):
    """A decoder layer whose weight is the transpose of an encoder ``Linear``'s (its own bias)."""

    def __init__(self, encoder_layer: nn.Linear) -> None:
        super().__init__()
        self.encoder_layer = [encoder_layer]  # a plain list: the encoder owns (and saves) the weight
        self.bias = nn.Parameter(torch.zeros(encoder_layer.in_features))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return F.linear(code, self.encoder_layer[0].weight.t(), self.bias)


@register_method("cae", family="reconstruction")
class ContractiveAutoencoder(AutoencoderBase):
    summary = "contractive autoencoder: reconstruction + lambda * squared Frobenius norm of the encoder Jacobian"
    Config = ContractiveConfig
    search_space = {**OPTIMISATION, "params.latent_dim": Choice((64, 256)),
                    "params.contractive_weight": Range(1e-4, 1.0, log=True)}

    def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        if not params.latent_dim:
            raise ConfigError("cae ties its decoder's entry layer to the bottleneck (otherwise rescaling the code "
                              "cancels the penalty), so params.latent_dim must be > 0")
        self.tie_decoder_entry()

    @classmethod
    def validate_run(cls, config) -> None:  # type: ignore[no-untyped-def]
        super().validate_run(config)
        if config.params.penalty == "weights":
            require(config.backbone, "linear_layers", "params.penalty=weights multiplies the encoder's weight "
                    "matrices, so it")

    def tie_decoder_entry(self) -> None:
        """Replace the decoder's first Linear (code -> features) by the bottleneck's transpose."""
        entry = self.decoder[0][0]
        assert isinstance(entry, nn.Linear) and entry.weight.shape == self.bottleneck.weight.T.shape
        self.decoder[0][0] = TiedLinear(self.bottleneck)

    def _linear_encoder(self) -> list[nn.Linear] | None:
        layers = getattr(self.backbone, "linear_layers", lambda: None)()
        if layers is None:
            return None
        return layers + ([self.bottleneck] if isinstance(self.bottleneck, nn.Linear) else [])

    def _closed_form_layer(self) -> tuple[nn.Linear, str] | None:
        """A one-layer encoder (Linear + ReLU, or a bare Linear bottleneck on flat pixels) has a closed form."""
        layers = self._linear_encoder()
        if layers is not None and len(layers) == 1 and not isinstance(self.bottleneck, nn.Linear):
            return layers[0], "relu"
        return None

    def penalty(self, x: torch.Tensor, vectors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(penalty, code): the contractive term for inputs ``x`` and their code; ``vectors`` (k, B, d) for the
        Hutchinson estimate, None for the exact Jacobian."""
        if self.params.penalty == "weights":
            layers = self._linear_encoder()
            assert layers is not None
            return weight_product_penalty(layers), self.encode(x)
        closed = self._closed_form_layer()
        if closed is not None:
            layer, activation = closed
            return dense_jacobian_penalty(x, layer, activation), self.encode(x)
        return jacobian_penalty(self.encode, x, vectors if self.params.projections else None)

    def compilable(self) -> bool:
        """The Jacobian penalty of a deep encoder backpropagates through a gradient (double backward), which
        torch.compile's aot_autograd does not support; the weight and closed-form penalties do not."""
        return self.params.penalty == "weights" or self._closed_form_layer() is not None

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        # the Hutchinson vectors come from the seeded generator, like every other random draw of a step
        shape = (self.params.projections, batch.images.shape[0], self.code_dim)
        return batch.images, torch.randn(shape, generator=generator, device=generator.device)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        images, vectors = views
        penalty, code = self.penalty(images, vectors)
        reconstruction = self.loss_against(self.decoder(code), images)
        loss = reconstruction + self.params.contractive_weight * penalty
        return StepOutput(loss, {"reconstruction": reconstruction.item(), "contractive": penalty.item()})
