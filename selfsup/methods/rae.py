"""Randomized autoencoder with layer-wise pretraining (seed 003), and greedy layer-wise pretraining.

For each Linear layer l of an MLP encoder (no biases while pretraining): a shallow autoencoder
on the previous layer's codes h_{l-1}, h_{l-1} -> act(W_e h_{l-1}) -> W_d -> h_{l-1}. In the
randomized autoencoder W_e keeps its random initialisation and is frozen; only W_d trains, and
at the end of the stage W_e <- W_d^T is copied into encoder layer l (W_d already is the
mirrored decoder layer). With ``random_encoder=false`` both train: classic greedy layer-wise
pretraining. A last stage (``finetune``) trains the whole autoencoder end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from selfsup.backbones.contract import require
from selfsup.losses import reconstruction_loss
from selfsup.methods.autoencoder import AutoencoderConfig
from selfsup.methods.base import StepOutput, register_method, stage_bounds
from selfsup.methods.layerwise import StagedAutoencoder


def _linear(stage: nn.Module) -> nn.Linear:
    return stage if isinstance(stage, nn.Linear) else next(m for m in stage.modules() if isinstance(m, nn.Linear))


@dataclass(frozen=True)
class RandomizedConfig(AutoencoderConfig):
    latent_dim: int = 0  # the MLP's last width is the code (seed 003's (784, 500) randomized AE: mlp widths)
    random_encoder: bool = True  # freeze W_e at its random init and copy W_d^T into it; false: greedy pretraining
    finetune: bool = True  # a last stage training every layer end to end


@register_method("rae", family="reconstruction")
class RandomizedAutoencoder(StagedAutoencoder):
    summary = "randomized autoencoder: layer-wise, random frozen encoder layer, W_e <- W_d^T (MLP backbones)"
    Config = RandomizedConfig
    recipe = {"backbone": "mlp"}  # its layer-wise weight copying needs an MLP

    @classmethod
    def validate_run(cls, config) -> None:  # type: ignore[no-untyped-def]
        super().validate_run(config)
        require(config.backbone, "linear_layers", "rae copies transposed weight matrices layer by layer, so it")

    def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        self.pairs = [(_linear(e), _linear(d)) for e, d in zip(self.encoder_stages, self.decoder_stages)]
        with torch.no_grad():
            for encoder_layer, decoder_layer in self.pairs:  # no biases while pretraining
                for layer in (encoder_layer, decoder_layer):
                    if layer.bias is not None:
                        layer.bias.zero_()

    def trainable(self, stage: int) -> list[nn.Module]:
        if stage >= self.layer_stages:
            return [self]
        encoder_layer, decoder_layer = self.pairs[stage]
        return [decoder_layer.weight] if self.params.random_encoder else [encoder_layer.weight, decoder_layer.weight]

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        last_of_stage = step + 1 == stage_bounds(total_steps, self.num_stages)[max(self.stage, 0) + 1]
        if self.params.random_encoder and last_of_stage and self.stage < self.layer_stages:
            encoder_layer, decoder_layer = self.pairs[self.stage]
            with torch.no_grad():
                encoder_layer.weight.copy_(decoder_layer.weight.T)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        (inputs,) = views
        stage = max(self.stage, 0)
        if stage >= self.layer_stages:
            return super().views_loss(batch, views)
        with torch.no_grad():  # the codes of the layers below, fixed
            h = inputs
            for module in self.encoder_stages[:stage]:
                h = module(h)
        out = self.decoder_stages[stage](self.encoder_stages[stage](h))
        if stage == 0:  # the first layer reconstructs the image (logits)
            loss = reconstruction_loss(out, batch.images, self.params.loss)
        else:
            loss = (out.float() - h.float()).pow(2).mean()
        return StepOutput(loss, {"stage": stage + 1})
