"""Layer-wise training with a symmetric decoder (seed 000): encoder and decoder stages paired from the outside in.

Stage k trains the k-th encoder stage and the decoder stage that inverts it, with the stages
already trained frozen, reconstructing the image through x -> E_1..E_k -> D_k..D_1. Each
stage gets an equal share of the epochs, a fresh optimizer state and its own warm-up + cosine
schedule; a last stage (``finetune``) trains everything end to end. Unlike the original, a
stage never re-initialises the layers trained before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from selfsup.backbones.contract import require
from selfsup.errors import ConfigError
from selfsup.methods.autoencoder import AutoencoderBase, AutoencoderConfig
from selfsup.methods.base import StepOutput, register_method, stage_of


class StagedAutoencoder(AutoencoderBase):
    """An autoencoder trained stage by stage over paired encoder / decoder stages."""

    @classmethod
    def validate_run(cls, config) -> None:  # type: ignore[no-untyped-def]
        super().validate_run(config)
        require(config.backbone, "stages", f"{cls.name} trains stage by stage, so it")

    def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        self.encoder_stages = list(backbone.stages()) + ([self.bottleneck] if params.latent_dim else [])
        self.decoder_stages = list(self.decoder)[::-1]  # D_1 (the output layer) first
        if len(self.encoder_stages) != len(self.decoder_stages):
            raise ConfigError(f"{self.name}: the encoder has {len(self.encoder_stages)} stages but the "
                              f"{params.decoder} decoder has {len(self.decoder_stages)}; use the symmetric decoder")
        self.num_stages = len(self.encoder_stages) + int(params.finetune)
        self.stage = -1

    @property
    def layer_stages(self) -> int:
        return len(self.encoder_stages)

    def begin_step(self, step: int, total_steps: int) -> None:
        self.set_stage(stage_of(step, total_steps, self.num_stages))

    def after_training(self) -> None:
        self.set_stage(self.num_stages)  # everything trainable again

    def trainable(self, stage: int) -> list[nn.Module]:
        """The modules stage ``stage`` trains (the end-to-end stage and later: all)."""
        if stage >= self.layer_stages:
            return [self]
        return [self.encoder_stages[stage], self.decoder_stages[stage]]

    def set_stage(self, stage: int) -> None:
        if stage == self.stage:
            return
        self.stage = stage
        self.requires_grad_(False)
        for module in self.trainable(stage):
            module.requires_grad_(True)

    def stage_logits(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """x -> E_1..E_{stage+1} -> D_{stage+1}..D_1: the reconstruction through the first stages."""
        h = x
        for module in self.encoder_stages[: stage + 1]:
            h = module(h)
        for module in self.decoder_stages[: stage + 1][::-1]:
            h = module(h)
        return h

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        (inputs,) = views
        stage = max(self.stage, 0)
        if stage >= self.layer_stages:
            return super().views_loss(batch, views)
        return StepOutput(self.loss_against(self.stage_logits(inputs, stage), batch.images), {"stage": stage + 1})


@dataclass(frozen=True)
class LayerwiseConfig(AutoencoderConfig):
    decoder: str = "symmetric"  # one decoder stage per encoder stage
    finetune: bool = True  # a last stage training every layer end to end


@register_method("layerwise", family="reconstruction")
class LayerwiseAutoencoder(StagedAutoencoder):
    summary = "greedy layer-wise training of Conv6 (or an MLP) with the symmetric decoder, then end to end"
    Config = LayerwiseConfig
