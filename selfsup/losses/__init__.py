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
from selfsup.registry import choose

# seed 000's agreement terms: name -> f(z1, z2, temperature, lambd, gather, rank)
EMBEDDING_LOSSES = {
    "mse": lambda z1, z2, t, l, g, r: (z1 - z2).pow(2).sum(1).mean(),
    "l1": lambda z1, z2, t, l, g, r: (z1 - z2).abs().sum(1).mean(),
    "cosine": lambda z1, z2, t, l, g, r: negative_cosine(z1, z2),
    "nt-xent": lambda z1, z2, t, l, g, r: nt_xent(z1, z2, t, g, r),
    "barlow-twins": lambda z1, z2, t, l, g, r: barlow_twins(z1, z2, l, gather=g),
}


def embedding_loss(z1, z2, kind: str, temperature: float = 0.5, lambd: float = 5e-3, gather=None,  # type: ignore[no-untyped-def]
                   rank: int = 0):
    """Seed 000's agreement term between two views' embeddings (B, D): one of ``EMBEDDING_LOSSES``.

    mse / l1: mean over the batch of the summed squared / absolute difference; cosine: negative
    cosine similarity (symmetric, no stop-gradient); nt-xent; barlow-twins. ``gather`` / ``rank``:
    the global batch for the batch-level losses under several processes (see ``nt_xent``).
    """
    return choose(EMBEDDING_LOSSES, kind, "the embedding loss")(z1, z2, temperature, lambd, gather, rank)


__all__ = [
    "EMBEDDING_LOSSES", "RECONSTRUCTION_LOSSES", "barlow_twins", "dense_jacobian_penalty", "embedding_loss",
    "gaussian_kl", "jacobian_penalty", "negative_cosine", "nt_xent", "reconstruction_loss",
    "weight_product_penalty",
]
