"""In-memory image datasets and the batch source the trainer reads from.

Small datasets are held whole as uint8 tensors on the training device and batched by
index slices, with no DataLoader and no per-sample Python (FastMNIST, seed 003). A
streaming source for folders larger than memory only has to offer the same
``BatchSource`` interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from selfsup.errors import ConfigError


def class_balanced_indices(labels: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``size`` (< N) images, drawn per class in proportion to the class counts (largest
    remainders), so a balanced set gives a balanced subset. A pure function of (labels, size, seed)."""
    labels = labels.cpu()
    if size <= 0:
        return torch.zeros(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    classes, counts = labels.unique(return_counts=True)
    exact = counts.double() * size / labels.shape[0]
    quota = exact.floor().long()
    remainder_order = (exact - quota).argsort(descending=True, stable=True)
    quota[remainder_order[: size - int(quota.sum())]] += 1
    chosen = []
    for label, take in zip(classes.tolist(), quota.tolist()):
        members = (labels == label).nonzero().squeeze(1)
        chosen.append(members[torch.randperm(members.shape[0], generator=generator)[:take]])
    return torch.cat(chosen).sort().values


class ImageDataset:
    """uint8 images (N, C, H, W) with int64 labels (N,); label -1 means unlabeled."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str], name: str = "") -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        self.images = images
        self.labels = labels
        self.classes = classes
        self.name = name
        self.source = ""  # where it was read from (a folder, a list file, "built in"); set by load_dataset
        self.files: list[str] | None = None  # image folders: each image's file, relative to the folder

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        files = None if self.files is None else [self.files[i] for i in indices.reshape(-1).tolist()]
        return self._like(self.images[indices], self.labels[indices], files)

    def _like(self, images: torch.Tensor, labels: torch.Tensor, files: list[str] | None = None) -> ImageDataset:
        """Another dataset of the same name, classes and source (and ``files``, one per image, when known)."""
        dataset = ImageDataset(images, labels, self.classes, self.name)
        dataset.source = self.source
        dataset.files = files
        return dataset

    def fingerprint(self) -> str:
        """SHA-1 (first 16 hex digits) of the images and labels in order: the content, whatever the files."""
        digest = hashlib.sha1(self.images.cpu().contiguous().numpy().tobytes())
        digest.update(self.labels.cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def random_subset(self, n: int, seed: int) -> ImageDataset:
        """A fixed random subset of ``n`` images (the same for the same seed)."""
        if n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[:n].sort().values)

    def to(self, device: torch.device | str) -> ImageDataset:
        return self._like(self.images.to(device), self.labels.to(device), self.files)

    def float_batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """Images in order as float [0, 1] batches, for feature extraction."""
        for start in range(0, len(self), batch_size):
            yield to_float(self.images[start : start + batch_size])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return images.float().div_(255.0)


@dataclass
class Batch:
    images: torch.Tensor  # (B, C, H, W) float in [0, 1], on the training device
    labels: torch.Tensor  # (B,), never used by self-supervised losses; for monitoring
    indices: torch.Tensor  # (B,) positions in the training set (auto-decoder codes, neighbours)


class BatchSource(Protocol):
    """What the trainer iterates: a fixed number of batches per epoch, in a seed-determined order."""

    steps_per_epoch: int

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]: ...


def check_one_batch(images: int, batch_size: int) -> None:
    """A training set must hold at least one batch (the last partial batch of an epoch is dropped)."""
    if images < batch_size:
        raise ConfigError(f"train.batch_size {batch_size} is larger than the training set ({images} images), so an "
                          "epoch would hold no step; lower --batch-size or train on more images (--limit)")


def local_batch_size(batch_size: int, world: int) -> int:
    """Each process's share of a global batch; the batch must split evenly."""
    if batch_size % world:
        raise ValueError(f"the batch size {batch_size} is not divisible by the {world} processes")
    return batch_size // world


def epoch_shards(size: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 start_step: int = 0) -> list[torch.Tensor]:
    """This process's indices for each step of an epoch, from ``start_step`` on.

    The permutation is a pure function of (seed, epoch), so a resumed run sees the same batches;
    each global batch of ``batch_size`` is split into ``world`` consecutive slices, one per
    process. The last partial batch is dropped. Every batch source draws its batches here.
    """
    local = local_batch_size(batch_size, world)
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    starts = (step * batch_size + rank * local for step in range(start_step, size // batch_size))
    return [order[start : start + local] for start in starts]


class InMemorySource:
    """Shuffled index-slice batches over a dataset held on the device; drops the last partial batch.

    Under ``world`` processes, ``batch_size`` is the global batch: every process draws the same
    permutation and takes its own ``batch_size / world`` rows of each global batch, so the shards
    of an epoch are disjoint and together are what one process would see.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, seed: int, device: torch.device | str,
                 rank: int = 0, world: int = 1) -> None:
        check_one_batch(len(dataset), batch_size)
        local_batch_size(batch_size, world)
        self.dataset = dataset.to(device)
        self.batch_size = batch_size
        self.rank, self.world = rank, world
        self.seed = seed
        self.steps_per_epoch = len(dataset) // batch_size

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        device = self.dataset.images.device
        for index in epoch_shards(len(self.dataset), self.batch_size, self.seed, epoch, self.rank, self.world,
                                  start_step):
            index = index.to(device)
            yield Batch(to_float(self.dataset.images[index]), self.dataset.labels[index], index)
