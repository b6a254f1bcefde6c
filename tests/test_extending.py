"""ARCHITECTURE.md's "Where to add" steps, tried: a throw-away backbone, method and dataset, each added by those
steps and nothing else, then used from the command line end to end. Each is removed from its registry afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from conftest import invoke

from selfsup.data import make_synthetic
from selfsup.data.catalog import DATASETS, DatasetSpec, _register
from selfsup.losses import nt_xent
from selfsup.methods.base import Method, StepOutput, register_method
from selfsup.registry import BACKBONES, METHODS

QUICK = ["--epochs", "1", "--batch-size", "64", "--quiet", "--set", "eval.probe_epochs=2"]


@pytest.fixture
def throw_away() -> Iterator[None]:
    """Registers the three throw-away entries (the decorators and the call the steps name) and removes them."""
    registered = []

    @BACKBONES.register("tiny-conv")  # the step: a factory registered in a module of backbones/, setting .out_dim
    class TinyConv(nn.Module):
        def __init__(self, in_channels: int, image_size: int) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(in_channels, 8, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(2), nn.Flatten())
            self.out_dim = 32

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    registered.append((BACKBONES, "tiny-conv"))

    @dataclass(frozen=True)
    class ToyConfig:
        temperature: float = 0.5

    @register_method("toy-contrast", family="joint-embedding")  # the step: a Method subclass, registered
    class ToyContrast(Method):
        summary = "a throw-away contrastive method (tests/test_extending.py)"
        Config = ToyConfig
        min_batch_size = 2

        def __init__(self, backbone, params, augment, context) -> None:  # type: ignore[no-untyped-def]
            super().__init__(backbone, params, augment, context)
            self.head = nn.Linear(backbone.out_dim, 16)

        def make_views(self, batch, generator):  # type: ignore[no-untyped-def]
            images = self.as_input(batch.images)
            return self.augment(images, generator), self.augment(images, generator)

        def views_loss(self, batch, views):  # type: ignore[no-untyped-def]
            z1, z2 = (self.head(self.backbone(v)) for v in views)
            return StepOutput(nt_xent(z1, z2, self.params.temperature))

    registered.append((METHODS, "toy-contrast"))

    # the step: a DatasetSpec passed to _register (its reader beside it)
    _register(DatasetSpec(name="toy-shapes", channels=3, image_size=16, num_classes=10, marker="", needs_files=False,
                          read=lambda folder, split, options: make_synthetic(400 if split == "train" else 100,
                                                                    seed=5 if split == "train" else 6),
                          classes=[f"class{i}" for i in range(10)]))
    registered.append((DATASETS, "toy-shapes"))
    try:
        yield
    finally:
        for registry, name in registered:
            del registry._items[name]


def test_a_new_backbone_method_and_dataset_work_end_to_end_by_the_documented_steps(throw_away: None,
                                                                                   tmp_path: Path) -> None:
    listed = invoke("methods")
    assert "toy-contrast" in listed.output and "joint-embedding" in listed.output
    assert "tiny-conv" in invoke("backbones").output and "toy-shapes" in invoke("datasets").output
    out = tmp_path / "run"
    result = invoke("train", "toy-contrast", "--dataset", "toy-shapes", "--backbone", "tiny-conv", *QUICK,
                    "--set", "temperature=0.3", "--out", str(out))
    assert result.exit_code == 0, result.output
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["features"]["dim"] == 32 and evaluation["config"]["params"]["temperature"] == 0.3
    assert evaluation["split"]["scored_images"] == 100
    # the new method trains on a built-in backbone too, and a built-in method on the new backbone
    assert invoke("train", "simclr", "--dataset", "toy-shapes", "--backbone", "tiny-conv", *QUICK, "--no-eval",
                  "--out", str(tmp_path / "simclr")).exit_code == 0


def test_a_new_backbone_without_a_capability_is_refused_by_name(throw_away: None, tmp_path: Path) -> None:
    # reconstruction needs a mirrored decoder, declared on the class (backbones/contract.py); tiny-conv has none
    result = invoke("train", "ae", "--dataset", "toy-shapes", "--backbone", "tiny-conv", *QUICK,
                    "--out", str(tmp_path / "ae"))
    assert result.exit_code == 2 and "got tiny-conv" in result.output and "conv6" in result.output
    assert not (tmp_path / "ae").exists()
