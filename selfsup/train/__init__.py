"""The trainer and its parts: optimizers, checkpoints, devices and precision."""

from selfsup.errors import CollapseError, DeviceError, DivergenceError, TrainingInterrupted
from selfsup.train.device import resolve_device, resolve_precision
from selfsup.train.trainer import Trainer, TrainResult

__all__ = ["CollapseError", "DeviceError", "DivergenceError", "TrainResult", "Trainer", "TrainingInterrupted", "resolve_device",
           "resolve_precision"]
