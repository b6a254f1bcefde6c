"""Registered methods, one file each; ``get_method(name)`` fails listing the valid names."""

from selfsup.methods import (  # noqa: F401  (registration)
    autodecoder,
    autoencoder,
    barlow_twins,
    cae,
    layerwise,
    nn_byol,
    parallel_ae,
    rae,
    rotnet,
    siamese,
    simclr,
    vae,
)
from selfsup.methods.base import METHODS, Method, MethodContext, StepOutput, register_method


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


__all__ = ["METHODS", "Method", "MethodContext", "StepOutput", "get_method", "register_method"]
