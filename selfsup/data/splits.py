"""The validation split: a fixed, seeded, class-balanced subset held out of the training split.

Every tuning path (sweeps, the online monitor, recipe choices) scores on it; the test split is
kept for the final figure. Training never sees a validation image while the split is in use: the
training set, the evaluation's labelled set and the monitor's bank are all drawn from the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.data.catalog import DATASETS, load_dataset
from selfsup.data.dataset import ImageDataset, class_balanced_indices
from selfsup.data.folders import FolderOptions
from selfsup.errors import ConfigError


def validation_indices(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """The validation split's indices: ``class_balanced_indices`` of the training labels, drawn by ``seed``."""
    if size > 0 and size >= labels.shape[0]:
        raise ConfigError(f"data.val_size={size}: a validation split of {size} images needs more than the "
                          f"{labels.shape[0]} training images; set data.val_size smaller (0: no validation split)")
    return class_balanced_indices(labels, size, seed)


def without(dataset: ImageDataset, indices: torch.Tensor) -> ImageDataset:
    """``dataset`` less the images at ``indices`` (order kept)."""
    keep = torch.ones(len(dataset), dtype=torch.bool)
    keep[indices] = False
    return dataset.subset(keep.nonzero().squeeze(1))


def resolve_val_size(dataset: str, val_size: int | None) -> int:
    """``data.val_size`` as a number: ``None`` is the dataset's default (0 where it has none)."""
    spec = DATASETS.get(dataset)
    size = spec.val_size if val_size is None else val_size
    if size and spec.train_split != "train":
        raise ConfigError(f"data.val_size: {dataset} trains on its {spec.train_split!r} split, so a validation split "
                          "cannot be held out of it; use data.val_size=0")
    return size


@dataclass
class LabelledSplits:
    """The labelled training images not held out (``fit``), the validation images and the test split."""

    fit: ImageDataset
    val: ImageDataset | None
    test: ImageDataset


def labelled_splits(dataset: str, data_dir: str | None = None, download: bool = True, val_size: int | None = None,
                    val_seed: int = 0, with_test: bool = True, options: FolderOptions | None = None) -> LabelledSplits:
    """The labelled ``train`` split divided into what may be fitted on and the validation images, and the test split."""
    size = resolve_val_size(dataset, val_size)
    train = load_dataset(dataset, "train", data_dir, download, options)
    val = None
    if size:
        held_out = validation_indices(train.labels, size, val_seed)
        val = train.subset(held_out)
        val.name = f"{dataset} (val)"
        train = without(train, held_out)
    test = load_dataset(dataset, "test", data_dir, download, options) if with_test else train
    return LabelledSplits(train, val, test)


def held_out_of_training(dataset: str, training: ImageDataset, val_size: int | None, val_seed: int) -> ImageDataset:
    """The training set with the validation images removed (datasets whose training split is ``train``)."""
    size = resolve_val_size(dataset, val_size)
    if not size:
        return training
    return without(training, validation_indices(training.labels, size, val_seed))
