"""One parametrised MLP builder for projectors and predictors (after lightly's heads)."""

from __future__ import annotations

import torch.nn as nn


def mlp_head(in_dim: int, hidden_dims: tuple[int, ...], out_dim: int, batch_norm: bool = True,
             bn_affine: bool = True, last_bias: bool = True, last_batch_norm: bool = False) -> nn.Sequential:
    """Linear -> [BatchNorm] -> ReLU for each hidden width, then a final Linear (optionally BatchNorm).

    ``hidden_dims=()`` gives a single linear map (a one-layer predictor with ``last_bias=False``).
    """
    layers: list[nn.Module] = []
    previous = in_dim
    for width in hidden_dims:
        layers.append(nn.Linear(previous, width, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width, affine=bn_affine))
        layers.append(nn.ReLU(inplace=True))
        previous = width
    layers.append(nn.Linear(previous, out_dim, bias=last_bias))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


# where a projection head normalises (params.projection_bn; checked with registry.choose)
PROJECTION_BN = {"none": "no BatchNorm", "hidden": "after each hidden layer",
                 "all": "also after the output, without affine parameters"}


def projection_head(in_dim: int, hidden: int, out_dim: int, layers: int = 2, bn: str = "hidden",
                    bn_affine: bool = True, last_bias: bool = True) -> nn.Sequential:
    """A projection head of ``layers`` Linear layers (``layers - 1`` hidden of width ``hidden``). ``bn``:
    ``hidden`` puts BatchNorm after each hidden layer (SimCLR, BYOL); ``all`` also after the output, without
    affine parameters (SimCLR v2, MoCo v3; with ``layers=3``, SimCLR v2's deeper head); ``none``: no BatchNorm."""
    return mlp_head(in_dim, (hidden,) * (layers - 1), out_dim, batch_norm=bn != "none", bn_affine=bn_affine,
                    last_bias=last_bias and bn != "all", last_batch_norm=bn == "all")
