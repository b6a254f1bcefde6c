"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views' embeddings driven to the identity."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.errors import ConfigError
from selfsup.heads import mlp_head
from selfsup.losses import barlow_twins
from selfsup.methods.base import Method, StepOutput, register_method
from selfsup.ops.collapse import embedding_health
from selfsup.ops.distributed import batch_gather
from selfsup.space import OPTIMISATION, VIEWS, Range


@dataclass(frozen=True)
class BarlowTwinsConfig:
    lambd: float = 5e-3  # off-diagonal weight (the paper's value for 8192-d embeddings)
    projection_dims: tuple[int, ...] = (1024, 1024, 1024)  # projector widths, BatchNorm + ReLU between
    # (the paper uses 8192 x 3 on ImageNet; 1024 keeps a 2-core CPU step within ~1.5x SimCLR's)

    def __post_init__(self) -> None:
        if self.lambd < 0:
            raise ConfigError(f"params.lambd must be >= 0, got {self.lambd}")
        if not self.projection_dims or min(self.projection_dims) < 1:
            raise ConfigError(f"params.projection_dims needs at least one width >= 1, got {self.projection_dims}")


@register_method("barlow-twins", family="joint-embedding")
class BarlowTwins(Method):
    summary = "Barlow Twins: cross-correlation of two views' embeddings to the identity, lambda off-diagonal"
    Config = BarlowTwinsConfig
    search_space = {**OPTIMISATION, **VIEWS, "params.lambd": Range(1e-3, 5e-2, log=True)}
    min_batch_size = 2  # standardises each dimension over the batch

    def __init__(self, backbone, params: BarlowTwinsConfig, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        *hidden, out = params.projection_dims
        self.projector = mlp_head(backbone.out_dim, tuple(hidden), out, last_bias=False)

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return self.augment.pair(batch.images, generator)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        z = self.projector(self.backbone(torch.cat(views)))
        z1, z2 = z.chunk(2)
        loss = barlow_twins(z1, z2, self.params.lambd, gather=batch_gather().get("gather"))
        return StepOutput(loss, embedding_health(z))
