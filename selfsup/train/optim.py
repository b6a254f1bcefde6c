"""Optimizers with no weight decay on biases and norm parameters, and LARS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from selfsup.config import OptimConfig
from selfsup.registry import OPTIMIZERS

if TYPE_CHECKING:
    from selfsup.methods.base import Method


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratios (You et al. 2017); groups with ``lars=False`` skip them."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      trust_coefficient=trust_coefficient, lars=True))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if group["lars"]:
                    param_norm, grad_norm = torch.norm(p), torch.norm(grad)
                    ratio = torch.where((param_norm > 0) & (grad_norm > 0),
                                        group["trust_coefficient"] * param_norm / grad_norm, torch.ones_like(param_norm))
                    grad = grad * ratio
                buffer = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buffer.mul_(group["momentum"]).add_(grad)
                p.add_(buffer, alpha=-group["lr"])


def parameter_groups(model: nn.Module, weight_decay: float, constant: Iterable[nn.Parameter] = (),
                     lr: float | None = None) -> list[dict]:
    """Weights with decay; biases and norm parameters (ndim <= 1) without, and without LARS (the ``lars`` key is
    LARS's own group option; the other optimizers keep it unread). Parameters in ``constant`` go to their own groups
    (same split) marked ``constant_lr: lr``: the training step keeps them at that rate instead of the schedule's."""
    fixed = {id(p) for p in constant}
    trained = [p for p in model.parameters() if p.requires_grad]
    scheduled = decay_split([p for p in trained if id(p) not in fixed], weight_decay)
    kept = [{**group, "constant_lr": lr}
            for group in decay_split([p for p in trained if id(p) in fixed], weight_decay) if group["params"]]
    return scheduled + kept


def decay_split(parameters: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """Two groups: ``parameters`` with ndim > 1 under ``weight_decay``; the rest without decay and without LARS."""
    return [{"params": [p for p in parameters if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0, "lars": False}]


OPTIMIZERS.register("lars")(lambda groups, config: LARS(groups, lr=config.lr, momentum=config.momentum))
OPTIMIZERS.register("sgd")(lambda groups, config: torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum))
OPTIMIZERS.register("adam")(lambda groups, config: torch.optim.Adam(groups, lr=config.lr))
OPTIMIZERS.register("adamw")(lambda groups, config: torch.optim.AdamW(groups, lr=config.lr))


def build_optimizer(method: Method, config: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names (an unknown name is an error listing the valid ones)."""
    groups = parameter_groups(method, config.weight_decay, method.constant_lr_parameters(), config.lr)
    return OPTIMIZERS.get(config.optimizer)(groups, config)
