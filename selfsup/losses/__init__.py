"""Self-supervised losses as small stateless functions, usable without the rest of selfsup."""

from selfsup.losses.contrastive import nt_xent

__all__ = ["nt_xent"]
