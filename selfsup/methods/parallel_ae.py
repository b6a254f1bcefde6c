"""Parallel (denoising) autoencoders (seed 000): two augmented views, two reconstructions, one agreement term.

L = rec(t1, f(v1)) + rec(t2, f(v2)) + alpha * L_emb(z1, z2) / d, with z the d-dimensional
codes of the views. ``parallel-ae``: each view reconstructs itself (t_i = v_i);
``parallel-dae``: both reconstruct the clean image (t_i = x), the augmentation acting as the
corruption. L_emb is one of mse, l1, cosine, nt-xent, barlow-twins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from selfsup.errors import ConfigError
from selfsup.losses import EMBEDDING_LOSSES, embedding_loss
from selfsup.methods.autoencoder import AutoencoderBase, AutoencoderConfig, one_of
from selfsup.methods.base import StepOutput, register_method
from selfsup.ops.distributed import batch_gather
from selfsup.space import VIEWS, Choice, Range


@dataclass(frozen=True)
class ParallelConfig(AutoencoderConfig):
    alpha: float = 0.1  # weight of the embedding loss (seed 000 sweeps 1e-5 .. 10)
    embedding_loss: str = "mse"  # mse (L2), l1, cosine, nt-xent or barlow-twins
    temperature: float = 0.5  # for nt-xent
    barlow_lambda: float = 5e-3  # off-diagonal weight for barlow-twins

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.embedding_loss, EMBEDDING_LOSSES, "embedding_loss")
        if self.alpha < 0:
            raise ConfigError(f"params.alpha must be >= 0, got {self.alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"params.temperature must be > 0, got {self.temperature}")


class ParallelBase(AutoencoderBase):
    Config = ParallelConfig
    augments = True  # its second view is an augmentation
    search_space = {**AutoencoderBase.search_space, **VIEWS, "params.alpha": Range(1e-4, 10.0, log=True),
                    "params.embedding_loss": Choice(("mse", "cosine", "nt-xent"))}
    denoising: ClassVar[bool] = False
    min_batch_size = 2  # nt-xent and barlow-twins compare images within the batch

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        return self.augment.pair(batch.images, generator)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.augment(x, generator)  # what plots/reconstructions.png shows as the corrupted input

    def parallel_loss(self, images: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor) -> StepOutput:
        p = self.params
        code = self.encode(torch.cat([v1, v2]))
        logits1, logits2 = self.decoder(code).chunk(2)
        z1, z2 = code.chunk(2)
        t1, t2 = (images, images) if self.denoising else (v1, v2)
        rec1, rec2 = self.loss_against(logits1, t1), self.loss_against(logits2, t2)
        emb = embedding_loss(z1, z2, p.embedding_loss, p.temperature, p.barlow_lambda, **batch_gather()) / z1.shape[1]
        return StepOutput(rec1 + rec2 + p.alpha * emb, {"reconstruction": (rec1 + rec2).item(),
                                                         "embedding": emb.item()})

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        return self.parallel_loss(batch.images, *views)


@register_method("parallel-ae", family="reconstruction")
class ParallelAutoencoder(ParallelBase):
    summary = "parallel autoencoder: two views reconstruct themselves + alpha * embedding agreement (seed 000)"


@register_method("parallel-dae", family="reconstruction")
class ParallelDenoisingAutoencoder(ParallelBase):
    summary = "parallel denoising autoencoder: two views reconstruct the clean image + alpha * agreement"
    denoising = True
