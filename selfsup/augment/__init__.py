"""Batched, per-sample-random augmentations on tensors, with one strength knob."""

from selfsup.augment import ops
from selfsup.augment.views import NOISE_MODELS, ViewAugment, corrupt

__all__ = ["NOISE_MODELS", "ViewAugment", "corrupt", "ops"]
