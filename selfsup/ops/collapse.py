"""Collapse monitor for joint-embedding methods (Jing et al. 2022; lightly's std monitor)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

COLLAPSE_THRESHOLD = 0.1  # sqrt(d) * mean per-dimension std of the normalised embeddings below this: collapsed


@torch.no_grad()
def embedding_health(z: torch.Tensor) -> dict[str, float]:
    """Per-dimension std of the L2-normalised embeddings (scaled by sqrt(d): ~1 when spread, 0 when collapsed),
    the effective rank exp(H(singular values / sum)) of the centred embeddings, and a 0/1 collapse flag."""
    z = F.normalize(z.detach().float(), dim=1)
    d = z.shape[1]
    if not torch.isfinite(z).all():  # diverged: the trainer's loss check stops the run with a clear message
        return {"embedding_std": math.nan, "effective_rank": math.nan, "collapsed": 0.0}
    std = z.std(0).mean().item() * math.sqrt(d)
    singular = torch.linalg.svdvals(z - z.mean(0))
    p = singular / singular.sum().clamp_min(1e-12)
    effective_rank = math.exp(-(p * torch.log(p.clamp_min(1e-12))).sum().item())
    return {"embedding_std": std, "effective_rank": effective_rank, "collapsed": float(std < COLLAPSE_THRESHOLD)}
