"""Schedules as precomputed per-step arrays (DINO's ``cosine_scheduler``) and the EMA update."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn


def warmup_cosine(base_value: float, total_steps: int, warmup_steps: int = 0, final_value: float = 0.0,
                  constant: bool = False) -> np.ndarray:
    """Linear warm-up from 0 to ``base_value``, then cosine decay to ``final_value`` (or flat)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    warmup = np.linspace(0.0, base_value, warmup_steps, endpoint=False) + base_value / max(warmup_steps, 1)
    remaining = total_steps - warmup_steps
    if constant:
        decay = np.full(remaining, base_value)
    else:
        progress = np.arange(remaining) / max(remaining, 1)
        decay = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(math.pi * progress))
    return np.concatenate([warmup[:warmup_steps], decay])


def cosine_momentum(base_momentum: float, total_steps: int, final_momentum: float = 1.0) -> np.ndarray:
    """BYOL's target momentum: 1 - (1 - base) * (cos(pi k / K) + 1) / 2, rising from base to 1."""
    progress = np.arange(total_steps) / max(total_steps, 1)
    return final_momentum - (final_momentum - base_momentum) * (np.cos(math.pi * progress) + 1) / 2


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """EMA: target <- momentum * target + (1 - momentum) * online, parameters and float buffers."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    for p_target, p_online in zip(target.parameters(), online.parameters()):
        p_target.mul_(momentum).add_(p_online.detach(), alpha=1 - momentum)
    for b_target, b_online in zip(target.buffers(), online.buffers()):
        if b_target.dtype.is_floating_point:
            b_target.mul_(momentum).add_(b_online, alpha=1 - momentum)
        else:
            b_target.copy_(b_online)


def stage_bounds(total_steps: int, stages: int) -> list[int]:
    """The first step of each of ``stages`` equal stages, then ``total_steps``."""
    return [round(i * total_steps / stages) for i in range(stages + 1)]


def stage_of(step: int, total_steps: int, stages: int) -> int:
    """The stage (0-based) that ``step`` belongs to; the last stage from ``total_steps`` on."""
    bounds = stage_bounds(total_steps, stages)
    return max(i for i in range(stages) if bounds[i] <= step) if step < total_steps else stages - 1


def warmup_steps(optim: Any, steps_per_epoch: int, total_steps: int) -> int:
    """``optim.warmup_epochs`` in steps, with a floor of ``optim.warmup_min_steps`` (at most a tenth of the run)."""
    steps = round(optim.warmup_epochs * steps_per_epoch)
    if optim.warmup_epochs > 0:
        steps = max(steps, min(optim.warmup_min_steps, total_steps // 10))
    return steps
