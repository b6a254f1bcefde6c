"""Reconstruction-family losses: pixel reconstruction, the Gaussian KL, contractive penalties."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from selfsup.registry import choose

# name -> per-element loss of (logits, target in [0, 1])
RECONSTRUCTION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda logits, target: (torch.sigmoid(logits) - target).pow(2),
    "bce": lambda logits, target: F.binary_cross_entropy_with_logits(logits, target, reduction="none"),
    "l1": lambda logits, target: (torch.sigmoid(logits) - target).abs(),
}
# activation -> its derivative as a function of the pre-activation (closed-form contractive penalty)
ACTIVATION_SLOPES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": lambda pre: torch.sigmoid(pre) * (1 - torch.sigmoid(pre)),
    "relu": lambda pre: (pre > 0).to(pre.dtype),
    "identity": torch.ones_like,
}


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "mse",
                        reduction: str = "mean") -> torch.Tensor:
    """Compare decoder ``logits`` (the output before the sigmoid) with ``target`` in [0, 1].

    ``mse`` and ``l1`` compare sigmoid(logits); ``bce`` is the binary cross-entropy on the
    logits (numerically stable). ``reduction``: ``mean`` over every element, or ``sum`` over
    the pixels of each image then the mean over the batch (the ELBO's scale, for the VAE).
    """
    per_element = choose(RECONSTRUCTION_LOSSES, kind, "the reconstruction loss")(logits.float(), target.float())
    if reduction == "sum":
        return per_element.flatten(1).sum(1).mean()
    return per_element.mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2), mean over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()


def dense_jacobian_penalty(x: torch.Tensor, layer: nn.Linear, activation: str) -> torch.Tensor:
    """Closed-form ||dh/dx||_F^2 for h = act(W x + b), mean over the batch (Rifai et al. 2011).

    J = diag(act'(a)) W, so ||J||_F^2 = sum_j act'(a_j)^2 ||W_j||^2. ``activation``: sigmoid
    (act' = h (1 - h)), relu (act' = 1[a > 0]) or identity.
    """
    pre = layer(x.flatten(1))
    slope = choose(ACTIVATION_SLOPES, activation, "the activation of a closed-form penalty")(pre)
    row_norms = layer.weight.pow(2).sum(1)  # (out,)
    return (slope.pow(2) * row_norms).sum(1).mean()


def jacobian_penalty(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     vectors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """||d encode(x) / dx||_F^2 per image, mean over the batch, for any encoder; also returns the code.

    ``vectors = None`` is exact: one backward pass per code dimension. ``vectors`` (k, B, d) of
    standard normal draws give Hutchinson's unbiased estimate E_v ||v^T J||^2 at k backward passes
    whatever the code size d. Differentiable (``create_graph``), so it can be a loss term. Images
    must not interact inside the encoder (no BatchNorm in training mode).
    """
    with torch.enable_grad():  # also under no_grad (evaluating the loss): the penalty is itself a gradient
        x = x.detach().requires_grad_(True)
        code = encode(x)
        total = code.new_zeros(())
        if vectors is None:
            for j in range(code.shape[1]):
                (grad,) = torch.autograd.grad(code[:, j].sum(), x, create_graph=True)
                total = total + grad.pow(2).flatten(1).sum(1).mean()
            return total, code
        for v in vectors:
            (grad,) = torch.autograd.grad((code * v).sum(), x, create_graph=True)
            total = total + grad.pow(2).flatten(1).sum(1).mean()
        return total / len(vectors), code


def weight_product_penalty(layers: list[nn.Linear]) -> torch.Tensor:
    """Seed 003's contractive term: ||W_L ... W_1||_F, the encoder's weights multiplied, activations ignored."""
    product = layers[0].weight
    for layer in layers[1:]:
        product = layer.weight @ product
    return product.norm()
