"""RotNet (Gidaris et al. 2018; seed 002): predict by how much (0, 90, 180, 270 degrees) an image was rotated."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selfsup.augment import ops
from selfsup.errors import ConfigError
from selfsup.heads import mlp_head
from selfsup.methods.base import Method, StepOutput, register_method
from selfsup.space import OPTIMISATION, Choice


@dataclass(frozen=True)
class RotNetConfig:
    all_rotations: bool = True  # every image in all four rotations (the paper); false: one random rotation each
    hidden: int = 0  # hidden width of the rotation classifier (0: a linear classifier on the features)
    # Gidaris et al. train on randomly cropped and flipped images: a random resized crop (augment.crop_scale,
    # augment.crop_ratio) and a horizontal flip (augment.flip_p), scaled by augment.strength, drawn once per image
    # before its rotations. False: the images are rotated as they come (no augment.* setting is read)
    crop_flip: bool = False

    def __post_init__(self) -> None:
        if self.hidden < 0:
            raise ConfigError(f"params.hidden must be >= 0, got {self.hidden}")


def rotate(images: torch.Tensor, quarter_turns: torch.Tensor) -> torch.Tensor:
    """Rotate each image (B, C, H, W) counter-clockwise by quarter_turns[i] * 90 degrees (square images)."""
    out = images.clone()
    for k in range(1, 4):
        chosen = quarter_turns == k
        if chosen.any():
            out[chosen] = torch.rot90(images[chosen], k, dims=(2, 3))
    return out


@register_method("rotnet", family="pretext-task")  # one image, a label from a transformation: no second view
class RotNet(Method):
    summary = "RotNet: classify the rotation (0/90/180/270 degrees) of each image"
    Config = RotNetConfig
    augments = True  # with params.crop_flip the crop and flip settings reach its views; otherwise none
    search_space = {**OPTIMISATION, "params.hidden": Choice((0, 256))}
    # `selfsup tune rotnet`'s best trial (bench/results/tune-all/rotnet, four significant figures): +5.4 validation kNN
    # points over the seeds' Adam 1e-3 at the proxy (3 seeds); at the standard budget on the validation split +1.3
    # probe, +1.8 kNN, -0.95 NMI (one seed each; BENCHMARKS "RotNet's tuned recipe"). The study also searched
    # augment.strength (0.53 in its best trial), which RotNet never reads: left out since 2026-12-03
    # Since 2026-12-03 it is evaluated at the online monitor's best measurement and stopped after 10 without a new
    # one: on a 1,500-image colour folder over 150 epochs the rotation task drained the encoder after epoch 5; on
    # Fashion-MNIST its run with them lost nothing on validation (bench/results/robust-folder/PLAN-keep-best.md)
    recipe = {"optim.optimizer": "adam", "optim.lr": 7.846e-3, "optim.weight_decay": 1.866e-5,
              "optim.warmup_epochs": 1.292, "train.batch_size": 256, "params.hidden": 256,
              "train.keep_best": True, "train.patience": 10}

    @classmethod
    def reads_augment(cls, params: RotNetConfig) -> bool:
        return params.crop_flip

    def __init__(self, backbone, params: RotNetConfig, augment, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(backbone, params, augment, context)
        hidden = (params.hidden,) if params.hidden else ()
        self.classifier = mlp_head(backbone.out_dim, hidden, 4)

    def make_views(self, batch, generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
        x = batch.images
        if self.params.crop_flip and not self.augment.identity:
            x = ops.affine_views(x, generator, self.augment.scale, self.augment.ratio, self.augment.flip_p)
        if self.params.all_rotations:
            turns = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
            x = x.repeat(4, 1, 1, 1)
        else:
            turns = torch.randint(0, 4, (x.shape[0],), generator=generator, device=generator.device).to(x.device)
        return rotate(x, turns), turns

    def views_loss(self, batch, views: tuple[torch.Tensor, ...]) -> StepOutput:  # type: ignore[no-untyped-def]
        images, turns = views
        logits = self.classifier(self.backbone(images))
        loss = F.cross_entropy(logits.float(), turns)
        return StepOutput(loss, {"rotation_accuracy": (logits.argmax(1) == turns).float().mean().item()})
