"""Fine-tuning with a fraction of the labels (semi-supervised evaluation).

The protocol is LP-FT (Kumar et al. 2022): a linear probe is fitted on the frozen encoder's
(``method.backbone``) features of a class-balanced fraction of the labelled training split, then
encoder and head are trained end to end from there, the encoder at a lower learning rate. The
same protocol runs on a random-init encoder of the same architecture and seed, so the gain from
pretraining and the gain from unfreezing are both explicit.
Results go to ``<run>/finetune.json``, keyed by the fraction.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from selfsup.config import EvalConfig
from selfsup.data import ImageDataset, to_float
from selfsup.errors import ConfigError
from selfsup.eval import extract_features, fit_linear_probe
from selfsup.train.step import apply_gradients


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 10  # passes over the labelled images (at least min_steps steps in all)
    min_steps: int = 200  # small label fractions still get this many steps
    lr: float = 1e-3  # the linear head's Adam learning rate
    encoder_lr: float = 1e-4  # the encoder's (lower: keep what pretraining learned)
    batch_size: int = 256
    weight_decay: float = 1e-5

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.min_steps < 0 or self.batch_size < 1:
            raise ConfigError("finetune: epochs and batch size must be >= 1, min_steps >= 0")
        if self.lr <= 0 or self.encoder_lr < 0:
            raise ConfigError("finetune: lr must be > 0 and encoder_lr >= 0")


def check_fraction(fraction: float) -> float:
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--labels is the fraction of labelled training images, in (0, 1]; got {fraction}")
    return fraction


def label_subset(dataset: ImageDataset, fraction: float, seed: int = 0) -> ImageDataset:
    """A class-balanced random ``fraction`` of ``dataset`` (at least one image per class present)."""
    check_fraction(fraction)
    if fraction == 1.0:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    labels = dataset.labels.cpu()
    chosen = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().squeeze(1)
        count = max(1, round(fraction * members.numel()))
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:count]])
    return dataset.subset(torch.cat(chosen).sort().values)


def _accuracy(model: nn.Module, dataset: ImageDataset, device: torch.device, batch_size: int = 1024) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            images = to_float(dataset.images[start : start + batch_size]).to(device)
            labels = dataset.labels[start : start + batch_size].to(device)
            correct += int((model(images).argmax(1) == labels).sum())
    return correct / max(1, len(dataset))


def probe_then_finetune(encoder: nn.Module, labelled: ImageDataset, test: ImageDataset, num_classes: int,
                        config: FinetuneConfig, eval_config: EvalConfig, device: torch.device, seed: int = 0,
                        progress: bool = True, desc: str = "fine-tune") -> tuple[dict[str, Any], dict[str, Any]]:
    """The frozen linear probe of ``encoder`` on ``labelled``, then fine-tuning from it; both tested on ``test``."""
    encoder = encoder.to(device).eval()
    train_features = extract_features(encoder, labelled, device, eval_config.extract_batch_size, False)
    test_features = extract_features(encoder, test, device, eval_config.extract_batch_size, False)
    head, probe = fit_linear_probe(train_features, labelled.labels.cpu(), test_features, test.labels.cpu(),
                                   eval_config.probe_epochs, eval_config.probe_lr, eval_config.probe_batch_size, seed,
                                   False)
    del train_features, test_features
    return probe, finetune_encoder(encoder, head, labelled, test, config, device, seed, progress, desc)


def finetune_encoder(encoder: nn.Module, head: nn.Linear, labelled: ImageDataset, test: ImageDataset,
                     config: FinetuneConfig, device: torch.device, seed: int = 0, progress: bool = True,
                     desc: str = "fine-tune") -> dict[str, Any]:
    """Train ``encoder`` + ``head`` (on the flattened features) with cross-entropy on ``labelled``."""
    torch.manual_seed(seed)
    model = nn.Sequential(encoder, nn.Flatten(), head).to(device)
    groups = [{"params": model[2].parameters(), "lr": config.lr}]
    if config.encoder_lr > 0:
        groups.append({"params": encoder.parameters(), "lr": config.encoder_lr})
    else:
        encoder.requires_grad_(False)
    optimizer = torch.optim.Adam(groups, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(labelled) / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    generator = torch.Generator().manual_seed(seed)
    images, labels = labelled.images, labelled.labels
    tic = time.perf_counter()
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=not progress or total < 50)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labelled), generator=generator)
        for start in range(0, len(labelled), config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = to_float(images[rows]).to(device)
            apply_gradients(F.cross_entropy(model(batch), labels[rows].to(device)), optimizer)
            scheduler.step()
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - tic
    return {"accuracy": _accuracy(model, test, device), "train_accuracy": _accuracy(model, labelled, device),
            "epochs": epochs, "steps": total, "seconds": round(seconds, 2)}


def finetune_run(run_dir: str | Path, fraction: float, config: FinetuneConfig | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Fine-tune a trained run's encoder and a random-init one with ``fraction`` of the labels; the frozen
    linear probe on the same labelled images beside them. Adds the result to ``<run>/finetune.json``."""
    from selfsup.api import build_method, load, setup_device
    from selfsup.data.plan import evaluation_splits
    from selfsup.methods import MethodContext
    from selfsup.train.rundir import read_run_config, write_json

    check_fraction(fraction)
    config = config or FinetuneConfig()
    run_dir = Path(run_dir)
    run_config = read_run_config(run_dir)
    device = setup_device(run_config)
    seed = run_config.train.seed
    method = load(run_dir, device)
    train_split, test_split = evaluation_splits(run_config.data, run_config.eval, seed)
    labelled = label_subset(train_split, fraction, seed)
    num_classes = int(max(train_split.labels.max(), test_split.labels.max())) + 1
    probe, pretrained = probe_then_finetune(copy.deepcopy(method.backbone), labelled, test_split, num_classes, config,
                                            run_config.eval, device, seed, progress, "fine-tune pretrained")
    torch.manual_seed(seed)  # the random-init encoder is the one the run started from
    context = MethodContext(train_split.channels, train_split.image_size, len(train_split), training=False)
    random_backbone = build_method(run_config, context).backbone
    random_probe, random_init = probe_then_finetune(random_backbone, labelled, test_split, num_classes, config,
                                                    run_config.eval, device, seed, progress, "fine-tune random-init")
    result = {"labels": fraction, "labelled_images": len(labelled), "test_images": len(test_split),
              "linear_probe": probe, "pretrained": pretrained, "random_init_linear_probe": random_probe,
              "random_init": random_init,
              "gain_over_random_init": pretrained["accuracy"] - random_init["accuracy"],
              "gain_over_linear_probe": pretrained["accuracy"] - probe["accuracy"], "config": asdict(config)}
    path = run_dir / "finetune.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[f"{fraction:g}"] = result
    write_json(path, stored)
    return result
