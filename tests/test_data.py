import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_idx

from selfsup.data import (
    DatasetFileError,
    DatasetNotFoundError,
    ImageDataset,
    InMemorySource,
    load_dataset,
    make_synthetic,
    read_idx,
)


def test_idx_reader_reads_raw_and_gzip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", array)), array)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b-idx3-ubyte", array, compress=True)), array)


def test_truncated_idx_file_is_named(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images-idx3-ubyte", np.zeros((5, 4, 4)))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetFileError, match="images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_corrupt_gzip_is_named(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images-idx3-ubyte", np.zeros((50, 8, 8)), compress=True)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetFileError, match=str(path)):
        read_idx(path)


def test_mnist_format_folder_through_data_dir(mnist_like: Path) -> None:
    train = load_dataset("fashion-mnist", "train", data_dir=mnist_like, download=False)
    test = load_dataset("mnist", "test", data_dir=mnist_like, download=False)
    assert train.images.shape == (64, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.labels.shape == (32,)


def test_selfsup_data_variable_is_searched(mnist_like: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFSUP_DATA", str(mnist_like.parent))
    (mnist_like.parent / "mnist").symlink_to(mnist_like)
    assert len(load_dataset("mnist", "train", download=False)) == 64


def test_missing_dataset_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import selfsup.data.catalog as catalog

    monkeypatch.setattr(catalog, "candidate_folders", lambda name, data_dir: [tmp_path / "nowhere"])
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion-mnist", "train", download=False)
    message = str(error.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "--data-dir" in message
    assert "download" in message


def test_cifar_pickle_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [0, 1, 2]}, handle)
    train = load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    assert train.images.shape == (15, 3, 32, 32) and train.labels.tolist()[:3] == [0, 1, 2]
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetFileError, match="test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


def test_stl10_binary_with_unlabeled_split(tmp_path: Path) -> None:
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    image = np.zeros((3, 96, 96), dtype=np.uint8)
    image[0, 10, 20] = 255  # channel 0, row 10, column 20
    column_major = image.transpose(0, 2, 1).tobytes()
    for split, count in (("train", 2), ("test", 1), ("unlabeled", 3)):
        (folder / f"{split}_X.bin").write_bytes(column_major * count)
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(bytes([1] * count))
    data = load_dataset("stl10", "train+unlabeled", data_dir=tmp_path, download=False)
    assert data.images.shape == (5, 3, 96, 96)
    assert data.images[0, 0, 10, 20] == 255
    assert data.labels.tolist() == [0, 0, -1, -1, -1]
    (folder / "test_X.bin").write_bytes(column_major[:-5])
    with pytest.raises(DatasetFileError, match="test_X.bin"):
        load_dataset("stl10", "test", data_dir=tmp_path, download=False)


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for label, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 50), colour).save(folder / f"{i}.png")
    data = load_dataset("image-folder", "train", data_dir=tmp_path)
    assert data.images.shape == (4, 3, 32, 32) and data.classes == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.images[0, 0].float().mean() == 255 and data.images[2, 2].float().mean() == 255
    (tmp_path / "test" / "cats" / "0.png").write_bytes(b"broken")
    with pytest.raises(DatasetFileError, match="0.png"):
        load_dataset("image-folder", "test", data_dir=tmp_path)


def test_builtin_datasets() -> None:
    digits = load_dataset("digits", "train")
    assert digits.images.shape[1:] == (1, 8, 8) and digits.images.max() == 255
    assert len(digits) + len(load_dataset("digits", "test")) == 1797
    synthetic = make_synthetic(100, seed=0)
    assert synthetic.images.shape == (100, 3, 16, 16)
    assert torch.equal(synthetic.images, make_synthetic(100, seed=0).images)


def test_random_subset_is_fixed_by_seed() -> None:
    data = make_synthetic(100, seed=0)
    assert torch.equal(data.random_subset(10, 1).labels, data.random_subset(10, 1).labels)
    assert len(data.random_subset(10, 1)) == 10


def test_in_memory_source_visits_each_image_once_per_epoch_in_a_seeded_order() -> None:
    data = ImageDataset(torch.zeros(100, 1, 8, 8, dtype=torch.uint8), torch.arange(100), [])
    source = InMemorySource(data, batch_size=10, seed=0, device="cpu")
    seen = torch.cat([batch.indices for batch in source.epoch(0)])
    assert sorted(seen.tolist()) == list(range(100))
    assert torch.equal(seen, torch.cat([batch.indices for batch in source.epoch(0)]))
    assert not torch.equal(seen, torch.cat([batch.indices for batch in source.epoch(1)]))
    resumed = torch.cat([batch.indices for batch in source.epoch(0, start_step=4)])
    assert torch.equal(resumed, seen[40:])
    batch = next(iter(source.epoch(0)))
    assert batch.images.dtype == torch.float32 and batch.images.shape == (10, 1, 8, 8)
