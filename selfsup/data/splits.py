"""The validation split: a fixed, seeded, class-balanced subset held out of the training split.

Every tuning path (sweeps, the online monitor, recipe choices) scores on it; the test split is
kept for the final figure. Training never sees a validation image while the split is in use: the
training set, the evaluation's labelled set and the monitor's bank are all drawn from the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


VAL_FRACTION = 0.1  # the default validation split: this share of the labelled training images, class-balanced,
VAL_MAX = 5000  # at most this many,
VAL_MIN_CLASS = 20  # and none when the smallest class has fewer images than this (its share would be under 2 images)


def default_val_size(labels: torch.Tensor | None) -> int:
    """The default validation split's size for training labels ``labels``: ``VAL_FRACTION`` of them, at most
    ``VAL_MAX``; 0 for unlabeled images or when a class has fewer than ``VAL_MIN_CLASS`` images."""
    if labels is None or labels.numel() == 0 or bool((labels < 0).any()):
        return 0
    smallest = int(labels.unique(return_counts=True)[1].min())
    if smallest < VAL_MIN_CLASS:
        return 0
    return min(VAL_MAX, round(VAL_FRACTION * labels.shape[0]))


def resolve_val_size(dataset: str, val_size: int | None, labels: torch.Tensor | None = None) -> int:
    """``data.val_size`` as a number: ``None`` is the dataset's default (its own number where it sets one, else
    ``default_val_size`` of the training ``labels``; 0 without them)."""
    spec = DATASETS.get(dataset)
    default = spec.val_size if spec.val_size is not None else default_val_size(labels)
    size = default if val_size is None else val_size
    if size and spec.train_split != "train":
        raise ConfigError(f"data.val_size: {dataset} trains on its {spec.train_split!r} split, so a validation split "
                          "cannot be held out of it; use data.val_size=0")
    return size


@dataclass
class LabelledSplits:
    """The labelled training images not held out (``fit``), the validation images and the test split, with where
    they were read from and a fingerprint of their content."""

    fit: ImageDataset
    val: ImageDataset | None
    test: ImageDataset | None  # None when not read (with_test=False)
    fingerprint: str = ""  # of the training split as read and (when read) the test split: their content

    def record(self) -> dict[str, Any]:
        """The resolved data source, as runs log it and eval.json keeps it (``data``)."""
        val = 0 if self.val is None else len(self.val)
        record = {"dataset": self.fit.name, "source": self.fit.source, "fingerprint": self.fingerprint,
                  "train_images": len(self.fit) + val, "val_images": val, "fit_images": len(self.fit)}
        if self.test is not None:
            record["test_images"] = len(self.test)
        return record


def labelled_splits(dataset: str, data_dir: str | None = None, download: bool = True, val_size: int | None = None,
                    val_seed: int = 0, with_test: bool = True, options: FolderOptions | None = None,
                    read: Callable[[str], ImageDataset] | None = None) -> LabelledSplits:
    """The labelled ``train`` split divided into what may be fitted on and the validation images, and the test split
    (without ``with_test``, ``test`` is None: not read). ``read(split)`` reads a split (a run's ``DataPlan``
    keeps its reads); by default ``load_dataset`` with the other arguments."""
    if read is None:
        def read(split: str) -> ImageDataset:
            return load_dataset(dataset, split, data_dir, download, options)
    train = read("train")
    size = resolve_val_size(dataset, val_size, train.labels)
    digest = train.fingerprint()
    val = None
    if size:
        held_out = validation_indices(train.labels, size, val_seed)
        val = train.subset(held_out)
        val.name = f"{dataset} (val)"
        train = without(train, held_out)
    test = None
    if with_test:
        test = read("test")
        digest = hashlib.sha1(f"{digest}|{test.fingerprint()}".encode()).hexdigest()[:16]
    return LabelledSplits(train, val, test, digest)


def held_out_of_training(dataset: str, training: ImageDataset, val_size: int | None, val_seed: int) -> ImageDataset:
    """The training set with the validation images removed (datasets whose training split is ``train``)."""
    size = resolve_val_size(dataset, val_size, training.labels)
    if not size:
        return training
    return without(training, validation_indices(training.labels, size, val_seed))
