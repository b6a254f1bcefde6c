"""Streaming image folders (issue 6, part 3): the same batches as the in-memory path, every image once per epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup.config import RunConfig
from selfsup.data import InMemorySource
from selfsup.data.folders import FolderOptions, read_folder
from selfsup.data.streaming import StreamingFolderSource
from selfsup.errors import ConfigError

SIZE = 32
OPTIONS = FolderOptions(SIZE, 3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """48 training PNG images of 3 classes, various sizes (decoding resizes and crops them to 32 px)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for c in range(3):
        (root / "train" / f"class{c}").mkdir(parents=True)
        for i in range(16):
            h, w = int(rng.integers(24, 48)), int(rng.integers(24, 48))
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "train" / f"class{c}" / f"{i}.png")
    return root


def test_every_image_once_per_epoch_across_processes(folder: Path) -> None:
    sources = [StreamingFolderSource(folder, OPTIONS, 16, seed=1, device="cpu", rank=r, world=2) for r in range(2)]
    for epoch in range(2):
        seen = torch.cat([b.indices for s in sources for b in s.epoch(epoch)])
        assert sorted(seen.tolist()) == list(range(48))  # 48 = 3 global batches of 16: nothing dropped
        shards = [torch.cat([b.indices for b in s.epoch(epoch)]) for s in sources]
        assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_streamed_batches_equal_the_in_memory_ones(folder: Path) -> None:
    memory = InMemorySource(read_folder(folder, "train", OPTIONS), 16, seed=3, device="cpu", rank=1, world=2)
    for workers in (0, 2):
        stream = StreamingFolderSource(folder, OPTIONS, 16, seed=3, device="cpu", rank=1, world=2, workers=workers)
        for a, b in zip(memory.epoch(1, start_step=1), stream.epoch(1, start_step=1), strict=True):
            assert torch.equal(a.indices, b.indices) and torch.equal(a.labels, b.labels)
            assert torch.equal(a.images, b.images)


def test_a_streamed_run_trains_and_a_non_folder_dataset_is_refused(folder: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = RunConfig().replace({"dataset": "image-folder", "data_dir": str(folder), "data.stream": True,
                                  "backbone": "mlp", "epochs": 2, "train.batch_size": 16, "log_every": 1})
    result = selfsup.train(config, out=tmp_path / "run", evaluate=False, progress=False)
    assert result.train.steps == 6 and np.isfinite(result.train.final_loss)
    with pytest.raises(ConfigError, match="image folders"):
        selfsup.train(config.replace({"dataset": "synthetic", "data_dir": None}), evaluate=False, progress=False)
    with pytest.raises(ConfigError, match="data.limit"):
        config.replace({"limit": 10})


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_training_on_the_gpu_keeps_data_and_augmentation_there(tmp_path: Path) -> None:
    from selfsup.methods.simclr import SimCLR

    devices = []
    original = SimCLR.make_views

    def spy(self, batch, generator):  # type: ignore[no-untyped-def]
        views = original(self, batch, generator)
        devices.append((batch.images.device.type, views[0].device.type))
        return views

    SimCLR.make_views = spy
    try:
        config = RunConfig().replace({"dataset": "synthetic", "backbone": "conv3", "limit": 256, "epochs": 1,
                                      "train.batch_size": 64, "device": "cuda", "precision": "auto",
                                      "eval.train_limit": 300, "eval.test_limit": 100, "eval.probe_epochs": 2})
        result = selfsup.train(config, out=tmp_path / "run", progress=False)
    finally:
        SimCLR.make_views = original
    assert set(devices) == {("cuda", "cuda")} and result.eval is not None
