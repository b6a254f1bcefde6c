"""Self-supervised losses as small stateless functions, usable without the rest of selfsup."""

from selfsup.losses.contrastive import nt_xent
from selfsup.losses.noncontrastive import barlow_twins, negative_cosine
from selfsup.losses.reconstruction import (
    RECONSTRUCTION_LOSSES,
    dense_jacobian_penalty,
    gaussian_kl,
    jacobian_penalty,
    reconstruction_loss,
    weight_product_penalty,
)

EMBEDDING_LOSSES = ("mse", "l1", "cosine", "nt-xent", "barlow-twins")


def embedding_loss(z1, z2, kind: str, temperature: float = 0.5, lambd: float = 5e-3, gather=None,  # type: ignore[no-untyped-def]
                   rank: int = 0):
    """Seed 000's agreement term between two views' embeddings (B, D): one of ``EMBEDDING_LOSSES``.

    mse / l1: mean over the batch of the summed squared / absolute difference; cosine: negative
    cosine similarity (symmetric, no stop-gradient); nt-xent; barlow-twins. ``gather`` / ``rank``:
    the global batch for the batch-level losses under several processes (see ``nt_xent``).
    """
    if kind == "mse":
        return (z1 - z2).pow(2).sum(1).mean()
    if kind == "l1":
        return (z1 - z2).abs().sum(1).mean()
    if kind == "cosine":
        return negative_cosine(z1, z2)
    if kind == "nt-xent":
        return nt_xent(z1, z2, temperature, gather, rank)
    if kind == "barlow-twins":
        return barlow_twins(z1, z2, lambd, gather=gather)
    raise ValueError(f"unknown embedding loss {kind!r}; valid: {', '.join(EMBEDDING_LOSSES)}")


__all__ = [
    "EMBEDDING_LOSSES", "RECONSTRUCTION_LOSSES", "barlow_twins", "dense_jacobian_penalty", "embedding_loss",
    "gaussian_kl", "jacobian_penalty", "negative_cosine", "nt_xent", "reconstruction_loss",
    "weight_product_penalty",
]
