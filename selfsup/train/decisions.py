"""What the device's measurements decide for one training run: the precision, the memory format and whether to
compile the encoder. Rank 0 measures and decides for every process."""

from __future__ import annotations

from typing import Any

import torch

from selfsup.config import RunConfig
from selfsup.data.cache import decision_cache
from selfsup.errors import ConfigError
from selfsup.methods import Method
from selfsup.ops import distributed
from selfsup.train.device import (
    compile_gain,
    compiler_available,
    method_step_timer,
    resolve_channels_last,
    resolve_compile,
    resolve_precision,
)


def run_settings(config: RunConfig, method: Method, source: Any, device: torch.device) -> tuple[str, bool, bool]:
    """(precision, channels-last, compiled) for training ``method`` on ``source`` under ``config``."""
    precision = training_precision(config, method, source, device)
    channels_last = resolve_channels_last(config.train.channels_last, device, decision_cache(),
                                          bf16=precision == "bf16")
    return precision, channels_last, decide_compile(config, method, source, device, precision, channels_last)


def training_precision(config: RunConfig, method: Method, source: Any, device: torch.device) -> str:
    """The run's precision: on a GPU ``auto`` times this run's own step in fp32 and bf16 (once per workload);
    under several processes rank 0 decides for all."""
    step_time = None
    # (timing a step alone on rank 0 would wait forever in the batch-level losses' collectives: several processes
    # use the probe)
    if config.train.precision == "auto" and device.type == "cuda" and distributed.world_size() == 1:
        batch = next(iter(source.epoch(0)))
        step_time = method_step_timer(method, batch, device, shared=(source.dataset,))
    choice = None
    if distributed.rank() == 0:
        choice = resolve_precision(config.train.precision, device, decision_cache(), step_time,
                                   _workload(config, method))
    return str(distributed.broadcast_object(choice))


def decide_compile(config: RunConfig, method: Method, source: Any, device: torch.device, precision: str,
                   channels_last: bool) -> bool:
    """train.compile: ``auto`` compiles the encoder only where its measured gain on this run's step repays the
    compile time over this run's length. Under several processes ``auto`` stays eager: timing a step alone on
    rank 0 would wait forever in the batch-level losses' collectives (use ``on`` there)."""
    if not method.compilable():
        if config.train.compile == "on":
            raise ConfigError(f"train.compile=on: {config.method}'s step with this config cannot be compiled "
                              "(it backpropagates through a gradient, which torch.compile does not support); use "
                              "train.compile=off or auto")
        return False
    choice = None
    if distributed.rank() == 0:
        choice = config.train.compile == "on"
        if config.train.compile == "auto" and compiler_available(device) and distributed.world_size() == 1:
            batch = next(iter(source.epoch(0)))
            bf16 = precision == "bf16"
            step = method_step_timer(method, batch, device, repeats=1, shared=(source.dataset,))(bf16)
            total_steps = config.train.epochs * source.steps_per_epoch
            workload = f"{_workload(config, method)}|{precision}|{'cl' if channels_last else 'nchw'}"
            measure = compile_gain(method, batch, device, bf16, channels_last, shared=(source.dataset,))
            choice = resolve_compile("auto", device, step * total_steps, measure, decision_cache(),
                                     workload)
    return bool(distributed.broadcast_object(choice))


def _workload(config: RunConfig, method: Method) -> str:
    """What a step's cost depends on, as a cache key: method, encoder, image shape, batch."""
    return (f"{config.method}|{config.backbone}|{method.context.in_channels}x{method.context.image_size}|"
            f"batch {config.train.batch_size}")
