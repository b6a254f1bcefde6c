"""Contrastive losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Gather = Callable[[torch.Tensor], torch.Tensor]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, gather: Gather | None = None,
            rank: int = 0) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020, eq. 1).

    z1, z2: (B, D) embeddings of two views; row i of z1 and row i of z2 are a positive pair and
    every other of the 2B - 2 embeddings is a negative. Returns the mean over all 2B anchors.

    For several processes, ``gather`` concatenates a (B, D) tensor from every process along
    dim 0, keeping gradients for the local rows; ``rank`` is this process's position. Each
    local anchor then contrasts against the global batch, and the result equals the
    single-process loss over the global batch (averaged over processes).
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    batch = z1.shape[0]
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    keys1 = gather(z1) if gather is not None else z1  # (N, D), N = world * B
    keys2 = gather(z2) if gather is not None else z2
    total = keys1.shape[0]
    if total < 2 and batch < 2:
        raise ValueError("NT-Xent needs at least 2 images per batch (the negatives are the other images)")
    anchors = torch.cat([z1, z2])  # (2B, D)
    keys = torch.cat([keys1, keys2])  # (2N, D)
    logits = anchors @ keys.T / temperature  # (2B, 2N)
    local = torch.arange(batch, device=z1.device) + rank * batch
    self_index = torch.cat([local, local + total])  # each anchor's own column
    positive_index = torch.cat([local + total, local])
    logits = logits.masked_fill(
        torch.zeros_like(logits, dtype=torch.bool).scatter_(1, self_index[:, None], True), float("-inf")
    )
    return F.cross_entropy(logits, positive_index)
