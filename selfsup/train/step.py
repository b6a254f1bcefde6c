"""The training step: one function that the trainer, the speed benchmark and fine-tuning share.

``apply_gradients`` is the update every optimisation here makes (zero the gradients, back-propagate, clip,
step). ``run_step`` is a self-supervised training step around it, exactly as the trainer runs it: the method's
per-step hook, the learning rate, the memory format, autocast, the update and the method's post-update hook
(EMA targets, predictors set from F). The speed benchmark times this same function, so its model-only reference
is the trainer's step on views made beforehand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from selfsup.methods import Method, StepOutput


def apply_gradients(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                    parameters: Iterable[torch.nn.Parameter] | None = None, grad_clip: float | None = None) -> None:
    """Zero the gradients, back-propagate ``loss``, clip their norm to ``grad_clip`` (over ``parameters``), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        assert parameters is not None, "clipping needs the parameters"
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()


@dataclass(frozen=True)
class StepSettings:
    """How a step runs on its device: bf16 autocast, the channels-last memory format, gradient clipping."""

    device_type: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    grad_clip: float | None = None


def run_step(model: torch.nn.Module, method: Method, optimizer: torch.optim.Optimizer, batch, generator,  # type: ignore[no-untyped-def]
             step: int, total_steps: int, lr: float, settings: StepSettings,
             views: tuple[torch.Tensor, ...] | None = None) -> tuple[float, StepOutput]:
    """One training step; returns the loss and the method's step output. ``model`` is ``method`` or its DDP wrapper.
    ``views``: made beforehand (the benchmark's model-only reference); None makes them from ``batch``, as in training.
    A non-finite loss is returned without an update: the caller stops."""
    method.begin_step(step, total_steps)
    for group in optimizer.param_groups:  # groups marked constant_lr keep their own rate (optim.parameter_groups)
        group["lr"] = group["constant_lr"] if group.get("constant_lr") is not None else lr
    if settings.channels_last:
        batch.images = batch.images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(settings.device_type, dtype=torch.bfloat16, enabled=settings.bf16):
        output = model(batch, generator, views)  # Method.forward: the training step
    loss = output.loss.float()
    value = loss.item()
    if not math.isfinite(value):
        return value, output
    apply_gradients(loss, optimizer, method.parameters(), settings.grad_clip)
    method.after_optimizer_step(step, total_steps)
    return value, output
