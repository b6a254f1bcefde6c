"""Streaming image folders: files decoded batch by batch, for folders larger than memory.

``StreamingFolderSource`` offers the trainer the same ``BatchSource`` interface as
``InMemorySource``, with the same epoch permutation and the same sharding of each global batch
over processes (``epoch_shards``), so a streamed run sees exactly the batches an in-memory run would; the
augmentations are the methods' own (on the training device), unchanged. Decoding runs in the
main process, or in ``workers`` DataLoader processes (one decoded batch per item, in order) where
that pays for itself: ``selfsup bench stream`` measures it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from selfsup.data.dataset import Batch, epoch_shards, local_batch_size, to_float
from selfsup.data.readers import decode_image, list_image_folder


class _DecodedBatches(torch.utils.data.Dataset):
    """Item i: the uint8 images (B, C, H, W) and labels of the i-th list of indices."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, batches: list[torch.Tensor], size: int,
                 channels: int) -> None:
        self.paths, self.labels, self.batches, self.size, self.channels = paths, labels, batches, size, channels

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.batches[i]
        images = np.stack([decode_image(self.paths[j], self.size, self.channels) for j in index.tolist()])
        return torch.from_numpy(images), self.labels[index], index


class StreamingFolderSource:
    """Batches of an image folder (one subfolder per class), decoded on the fly."""

    def __init__(self, root: str | Path, size: int, channels: int, batch_size: int, seed: int,
                 device: torch.device | str, rank: int = 0, world: int = 1, workers: int = 0) -> None:
        self.paths, labels, self.classes = list_image_folder(Path(root))
        self.labels = torch.tensor(labels, dtype=torch.int64)
        if len(self.paths) < batch_size:
            raise ValueError(f"batch size {batch_size} is larger than the training set ({len(self.paths)} images)")
        local_batch_size(batch_size, world)
        self.size, self.channels, self.device = size, channels, torch.device(device)
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        self.workers = workers
        self.steps_per_epoch = len(self.paths) // batch_size
        self.dataset = None  # nothing held in memory (methods that look images up by index need InMemorySource)

    def __len__(self) -> int:
        return len(self.paths)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        shards = epoch_shards(len(self.paths), self.batch_size, self.seed, epoch, self.rank, self.world, start_step)
        items = _DecodedBatches(self.paths, self.labels, shards, self.size, self.channels)
        if self.workers > 0:
            loader = torch.utils.data.DataLoader(items, batch_size=None, shuffle=False, num_workers=self.workers,
                                                 prefetch_factor=2, persistent_workers=False)
        else:
            loader = (items[i] for i in range(len(items)))
        pin = self.device.type == "cuda"
        for images, labels, index in loader:
            if pin:
                images = images.pin_memory()
            images = images.to(self.device, non_blocking=pin)
            yield Batch(to_float(images), labels.to(self.device), index.to(self.device))
