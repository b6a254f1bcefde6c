"""What a method is: an ``nn.Module`` holding a backbone and its heads, exposing one training step.

A step is a module call, ``method(batch, generator) -> StepOutput`` (``forward``), which a method writes as two
halves: ``make_views`` (the data side: augmented views, corrupted inputs) and ``views_loss`` (the model side).
The trainer owns the loop (minGPT's split): ``train/step.run_step`` calls ``begin_step``, the module (or its
DistributedDataParallel wrapper, which passes the ``StepOutput`` through), back-propagates ``.loss``, steps the
optimizer, then calls ``after_optimizer_step`` (EMA targets, predictor updates). Nothing is kept on the module
between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn

from selfsup.augment import ViewAugment
from selfsup.data import Batch
from selfsup.ops.schedules import stage_bounds, stage_of  # noqa: F401  (re-exported for staged methods)
from selfsup.registry import METHODS
from selfsup.space import OPTIMISATION, Space

if TYPE_CHECKING:
    from selfsup.config import RunConfig


# The optimisation that the validation study chose for SimCLR and that BYOL's check carried over (README "Defaults
# and why"): SGD with momentum 0.9 at lr 0.06 for batch 128, weight decay 5e-4, a 0.2-epoch warm-up, cosine decay.
SGD_RECIPE: dict[str, Any] = {"optim.optimizer": "sgd", "optim.lr": 0.06, "optim.momentum": 0.9,
                              "optim.weight_decay": 5e-4, "optim.warmup_epochs": 0.2, "train.batch_size": 128}


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, differentiable
    logs: dict[str, Any] = field(default_factory=dict)  # extra values for metrics.jsonl (numbers or lists)
    record: bool = False  # write this step's logs to metrics.jsonl even off the log_every grid


@dataclass(frozen=True)
class MethodContext:
    """What a method may know about the data when it is built."""

    in_channels: int
    image_size: int
    num_examples: int  # training-set size (per-image codes, neighbour tables)
    training: bool = True  # False when a trained run is loaded for use (eval, explore): training-only inputs unread


@dataclass(frozen=True)
class NoParams:
    """For methods with no fields of their own."""


class Method(nn.Module):
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # one of FAMILIES
    summary: ClassVar[str] = ""  # one line for `selfsup methods`
    Config: ClassVar[type] = NoParams
    min_batch_size: ClassVar[int] = 1
    # a decoder back to images: reconstructions, reconstruction error, anomaly scores, interpolation
    reconstructs: ClassVar[bool] = False
    # trains on neighbour files (``params.neighbors``) mined in the representation of a run of this method
    neighbors_from: ClassVar[str | None] = None
    # config overrides (``--set`` keys) of this method's tuned recipe, chosen on the validation split; applied by
    # ``RunConfig.for_method`` (the CLI's default ``--recipe tuned``), never by a bare ``RunConfig()``
    recipe: ClassVar[dict[str, Any]] = {}
    # what `selfsup tune` searches (config key -> Range or Choice, selfsup/space.py): the optimisation for every
    # method; a family or a method adds its own keys beside its recipe
    search_space: ClassVar[Space] = OPTIMISATION
    num_stages: int = 1  # >1: training is split into stages, each with a fresh optimizer state and schedule
    multi_crop: ClassVar[bool] = False  # trains on augment.local_crops small crops beside its two global views
    # make_views draws from ``self.augment``; False: no augment.* setting changes this method's training (it is not
    # searched, and a benchmark run differing only there is the same run)
    augments: ClassVar[bool] = True

    @classmethod
    def reads_augment(cls, params: Any) -> bool:
        """Whether augment.* reaches the views of a run with these params (``augments`` says whether any can)."""
        return cls.augments

    def __init__(self, backbone: nn.Module, params: Any, augment: ViewAugment, context: MethodContext) -> None:
        super().__init__()
        self.backbone = backbone
        self.params = params
        self.augment = augment
        self.context = context

    @classmethod
    def validate_run(cls, config: RunConfig) -> None:
        """Reject a run configuration this method cannot train; raise ``ConfigError``."""
        from selfsup.errors import ConfigError

        if config.train.batch_size < cls.min_batch_size:
            raise ConfigError(
                f"{cls.name} needs a batch size of at least {cls.min_batch_size}, got {config.train.batch_size}"
            )
        if config.augment.local_crops and not cls.multi_crop:
            raise ConfigError(f"augment.local_crops: {cls.name} does not train on multi-crop views (simclr and the "
                              "siamese methods do)")

    def global_and_local_views(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Two global views, then ``augment.local_crops`` small crops (multi-crop, Caron et al. 2020)."""
        views = list(self.augment.pair(images, generator))
        count = self.augment.config.local_crops
        if count:
            local = self.augment.with_crop_scale(self.augment.config.local_crop_scale)
            views += [local(images, generator) for _ in range(count)]
        return tuple(views)

    def make_views(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """The data side of a step: the augmented views (or corrupted inputs, targets) the loss needs."""
        raise NotImplementedError

    def views_loss(self, batch: Batch, views: tuple[torch.Tensor, ...]) -> StepOutput:
        """The model side of a step: forward the views and compute the loss."""
        raise NotImplementedError

    def forward(self, batch: Batch, generator: torch.Generator,
                views: tuple[torch.Tensor, ...] | None = None) -> StepOutput:
        """The training step, the one way a step is run (the trainer, DistributedDataParallel's wrapper, the speed
        benchmark, the tests): ``make_views`` then ``views_loss``. ``views`` made beforehand skip ``make_views``
        (the benchmark's model-only reference)."""
        return self.views_loss(batch, self.make_views(batch, generator) if views is None else views)

    def attach_data(self, dataset: Any) -> None:
        """Called with the training set (on the device) before training; methods that look images up by index
        (nearest-neighbour positives) keep it. The default does nothing."""

    def begin_step(self, step: int, total_steps: int) -> None:
        """Called before every training step (staged methods switch stage here); the default does nothing."""

    def constant_lr_parameters(self) -> list[nn.Parameter]:
        """Parameters whose learning rate stays at optim.lr through the warm-up and the decay (SimSiam's fixed
        predictor rate); none by default."""
        return []

    def compilable(self) -> bool:
        """Whether torch.compile can train this step (train.compile=auto skips it, =on refuses, when not)."""
        return True

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Called after every optimizer step; the default does nothing."""

    def after_training(self) -> None:
        """Called once when the last step is done (staged methods unfreeze everything)."""

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The representation: backbone features (B, out_dim) of images (B, C, H, W), uint8 or float in [0, 1],
        on the method's device (images elsewhere are moved there)."""
        return self.backbone(self.as_input(images))

    def as_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images as the encoder takes them: float in [0, 1] on the method's device."""
        images = images.to(next(self.backbone.parameters()).device)
        return images.float().div_(255.0) if images.dtype == torch.uint8 else images


FAMILIES = ("joint-embedding", "reconstruction", "pretext-task")


def register_method(name: str, family: str):  # type: ignore[no-untyped-def]
    """Class decorator: registers a Method subclass under ``name`` in ``family`` (one of FAMILIES)."""
    if family not in FAMILIES:
        raise ValueError(f"method {name}: family must be one of {FAMILIES}, got {family!r}")

    def decorator(cls: type[Method]) -> type[Method]:
        cls.name = name
        cls.family = family
        METHODS.register(name)(cls)
        return cls

    return decorator
