"""SimCLR (Chen et al. 2020): two views, a projection head, NT-Xent."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.errors import ConfigError
from selfsup.heads import PROJECTION_BN, projection_head
from selfsup.losses import nt_xent
from selfsup.methods.base import SGD_RECIPE, Method, StepOutput, register_method
from selfsup.ops.collapse import embedding_health
from selfsup.ops.distributed import batch_gather
from selfsup.registry import choose
from selfsup.space import MULTI_CROP, OPTIMISATION, VIEWS, Choice, Range


@dataclass(frozen=True)
class SimCLRConfig:
    temperature: float = 0.5  # NT-Xent tau; lower sharpens negatives (0.1-0.5 typical; 1 is seed 000's thesis)
    projection_dim: int = 128  # output of the projection head, where the loss is computed
    projection_hidden: int = 512  # hidden width of the projection head
    projection_layers: int = 2  # Linear layers of the head (3: SimCLR v2's deeper head)
    projection_bn: str = "hidden"  # BatchNorm after the hidden layers; all: also after the output; none

    def __post_init__(self) -> None:
        choose(PROJECTION_BN, self.projection_bn, "params.projection_bn")
        if not 1 <= self.projection_layers <= 4:
            raise ConfigError(f"params.projection_layers must be 1 to 4, got {self.projection_layers}")
        if self.temperature <= 0:
            raise ConfigError(f"params.temperature must be > 0, got {self.temperature}")
        if self.projection_dim < 1 or self.projection_hidden < 1:
            raise ConfigError("params.projection_dim and params.projection_hidden must be >= 1")


@register_method("simclr", family="joint-embedding")
class SimCLR(Method):
    summary = "two augmented views, projection head, NT-Xent contrastive loss"
    Config = SimCLRConfig
    min_batch_size = 2  # the other images of the batch are the negatives
    multi_crop = True
    # chosen on the Fashion-MNIST validation split (bench/study/simclr_stage*.sh, README "Defaults and why"):
    # against seed 000's Adam 1e-3 / batch 256 / temperature 0.5, +1.2 probe, +1.5 kNN, +3.9 NMI points there
    # (means of 3 seeds)
    recipe = {**SGD_RECIPE, "params.temperature": 0.2}
    search_space = {**OPTIMISATION, **VIEWS, "params.temperature": Range(0.05, 1.0, log=True),
                    "params.projection_bn": Choice(("hidden", "all")), "params.projection_layers": Choice((2, 3)),
                    **MULTI_CROP}

    def __init__(self, backbone, params: SimCLRConfig, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        self.projector = projection_head(backbone.out_dim, params.projection_hidden, params.projection_dim,
                                         params.projection_layers, params.projection_bn)

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return self.global_and_local_views(batch.images, generator)

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        z = self.projector(self.backbone(torch.cat(views)))  # (V B, projection_dim)
        zs = z.chunk(len(views))
        # the two global views are a pair; with multi-crop each small crop is also paired with both globals
        pairs = [(0, 1)] + [(g, v) for v in range(2, len(views)) for g in (0, 1)]
        loss = sum(nt_xent(zs[i], zs[j], self.params.temperature, **batch_gather()) for i, j in pairs) / len(pairs)
        return StepOutput(loss, embedding_health(torch.cat(zs[:2])))
