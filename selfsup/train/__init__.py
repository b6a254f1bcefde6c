"""The trainer and its free-standing parts: schedules, EMA, optimizers, checkpoints, devices."""

from selfsup.train.device import DeviceError, resolve_device, resolve_precision
from selfsup.train.schedules import cosine_momentum, update_momentum, warmup_cosine
from selfsup.train.trainer import DivergenceError, Trainer, TrainingInterrupted, TrainResult

__all__ = [
    "DeviceError", "DivergenceError", "TrainResult", "Trainer", "TrainingInterrupted", "cosine_momentum",
    "resolve_device", "resolve_precision", "update_momentum", "warmup_cosine",
]
