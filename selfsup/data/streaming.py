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

from selfsup.data.dataset import Batch, check_one_batch, epoch_shards, local_batch_size, to_float
from selfsup.data.folders import FolderOptions, detect_channels, folder_files
from selfsup.data.readers import decode_image


class _DecodedBatches(torch.utils.data.Dataset):
    """Item i: the uint8 images (B, C, H, W) and labels of the i-th list of indices."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, batches: list[torch.Tensor], size: int,
                 channels: int, resize: str) -> None:
        self.paths, self.labels, self.batches, self.size, self.channels = paths, labels, batches, size, channels
        self.resize = resize

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.batches[i]
        images = np.stack([decode_image(self.paths[j], self.size, self.channels, self.resize) for j in index.tolist()])
        return torch.from_numpy(images), self.labels[index], index


class StreamingFolderSource:
    """Batches of ``split`` of an image folder, listed and decoded as the in-memory path does (``folder_files``,
    ``options``: size, channels, resize), decoded on the fly."""

    def __init__(self, folder: str | Path, options: FolderOptions, batch_size: int, seed: int,
                 device: torch.device | str, rank: int = 0, world: int = 1, workers: int = 0,
                 split: str = "train") -> None:
        self.paths, labels, self.classes = folder_files(Path(folder), split, options)
        self.labels = torch.tensor(labels, dtype=torch.int64)
        check_one_batch(len(self.paths), batch_size)
        local_batch_size(batch_size, world)
        self.size, self.resize, self.device = options.image_size, options.resize, torch.device(device)
        self.channels = options.channels or detect_channels(self.paths)
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        self.workers = workers
        self.steps_per_epoch = len(self.paths) // batch_size
        self.dataset = None  # nothing held in memory (methods that look images up by index need InMemorySource)

    def __len__(self) -> int:
        return len(self.paths)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        shards = epoch_shards(len(self.paths), self.batch_size, self.seed, epoch, self.rank, self.world, start_step)
        items = _DecodedBatches(self.paths, self.labels, shards, self.size, self.channels, self.resize)
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
