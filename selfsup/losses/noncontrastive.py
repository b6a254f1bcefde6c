"""Non-contrastive embedding losses: negative cosine (BYOL, SimSiam) and Barlow Twins."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """-cos(p_i, z_i), mean over the batch. The caller detaches ``z`` where it is a target."""
    return -F.cosine_similarity(p.float(), z.float(), dim=1).mean()


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, eps: float = 1e-5,
                 gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021): sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2.

    C is the cross-correlation of the two views' embeddings, each dimension standardised over
    the batch (mean 0, std 1 with the biased estimate), so C_ij = sum_b z1_bi z2_bj / B.
    For several processes, ``gather`` concatenates every process's rows (with gradients): the
    statistics and C are those of the global batch, and every process gets the global loss.
    """
    if gather is not None:
        z1, z2 = gather(z1), gather(z2)
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("Barlow Twins needs at least 2 images per batch (it standardises over the batch)")
    z1, z2 = z1.float(), z2.float()
    z1 = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = z1.T @ z2 / z1.shape[0]
    on_diagonal = (torch.diagonal(c) - 1).pow(2).sum()
    off_diagonal = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diagonal + lambd * off_diagonal
