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


def _png_folder(root: Path, classes: dict[str, int], size: int = 28, mode: str = "L") -> None:
    """``count`` PNGs per class, each class a different grey (or colour) level."""
    from PIL import Image

    for index, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            colour = 40 * (index + 1) if mode == "L" else (40 * (index + 1), 0, 0)
            Image.new(mode, (size, size + 6), colour).save(root / name / f"{name}-{i}.png")


def test_a_grayscale_folder_is_read_at_its_configured_size_with_one_channel(tmp_path: Path) -> None:
    from selfsup.api import evaluation_splits, training_data
    from selfsup.config import EvalConfig, RunConfig

    _png_folder(tmp_path / "train", {"zero": 3, "one": 2})
    _png_folder(tmp_path / "test", {"one": 1, "zero": 1})
    config = RunConfig().replace({"dataset": "image-folder", "data_dir": str(tmp_path), "data.image_size": 28,
                                  "data.val_size": 0, "train.batch_size": 4})
    train = training_data(config)
    assert train.images.shape == (5, 1, 28, 28) and train.classes == ["one", "zero"]
    assert train.labels.tolist() == [0, 0, 1, 1, 1] and train.images[0].float().mean() == 80  # "one": grey 80
    _, test = evaluation_splits(config.data, EvalConfig(), 0)
    assert test.labels.tolist() == [0, 1] and test.images.shape == (2, 1, 28, 28)  # labels by class name
    colour = RunConfig().replace({"dataset": "image-folder", "data_dir": str(tmp_path), "data.channels": 3,
                                  "data.val_size": 0, "data.resize": "stretch", "train.batch_size": 4})
    assert training_data(colour).images.shape == (5, 3, 32, 32)
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match="image folders"):
        training_data(RunConfig().replace({"dataset": "digits", "data.image_size": 28}))


def test_class_folders_that_differ_between_splits_are_named(tmp_path: Path) -> None:
    _png_folder(tmp_path / "train", {"cat": 1, "dog": 1})
    _png_folder(tmp_path / "test", {"cat": 1, "bird": 1})
    with pytest.raises(DatasetFileError, match=r"test/ has bird, cat; train/ has cat, dog \(only in test/: bird\)"):
        load_dataset("image-folder", "test", data_dir=tmp_path)


def test_a_folder_without_splits_is_split_by_class_and_seed(tmp_path: Path) -> None:
    from selfsup.data.folders import FolderOptions

    _png_folder(tmp_path, {"a": 10, "b": 5})
    options = FolderOptions(image_size=16, test_fraction=0.2, seed=3)
    train = load_dataset("image-folder", "train", data_dir=tmp_path, options=options)
    test = load_dataset("image-folder", "test", data_dir=tmp_path, options=options)
    assert len(train) == 12 and len(test) == 3 and test.labels.tolist() == [0, 0, 1]  # 2 of a, 1 of b
    again = load_dataset("image-folder", "test", data_dir=tmp_path, options=options)
    assert torch.equal(again.images, test.images)  # the same seed, the same split
    other = load_dataset("image-folder", "train", data_dir=tmp_path, options=FolderOptions(16, seed=4))
    assert len(other) == 12  # another seed draws other images, in the same proportions


def test_a_corrupt_jpeg_is_named(tmp_path: Path) -> None:
    _png_folder(tmp_path / "train", {"a": 2})
    (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DatasetFileError, match="broken.jpg"):
        load_dataset("image-folder", "train", data_dir=tmp_path)


def test_decoded_folders_are_cached_and_a_changed_file_decodes_again(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from importlib import import_module

    from PIL import Image

    folders = import_module("selfsup.data.folders")
    _png_folder(tmp_path / "train", {"a": 2, "b": 2})
    first = load_dataset("image-folder", "train", data_dir=tmp_path)
    calls = []
    real = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda *args: calls.append(args[0]) or real(*args))
    again = load_dataset("image-folder", "train", data_dir=tmp_path)
    assert calls == [] and torch.equal(again.images, first.images)  # from the cache, nothing decoded
    Image.new("L", (28, 34), 250).save(tmp_path / "train" / "a" / "a-0.png")  # a changed file
    changed = load_dataset("image-folder", "train", data_dir=tmp_path)
    assert len(calls) == 4 and changed.images[0].float().mean() == 250  # decoded again, with the new pixels


def test_an_unlabeled_folder_trains_and_is_evaluated_on_a_labelled_one(tmp_path: Path) -> None:
    import numpy as np
    from conftest import invoke
    from PIL import Image

    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    rng = np.random.default_rng(0)
    for i in range(96):
        Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(unlabeled / f"{i}.png")
    _png_folder(tmp_path / "labelled", {"dark": 20, "light": 20}, size=20)
    common = ["--dataset", "image-folder", "--backbone", "mlp", "--image-size", "16", "--epochs", "1",
              "--batch-size", "32", "--quiet", "--precision", "fp32", "--set", "eval.probe_epochs=2"]
    run = tmp_path / "run"
    result = invoke("train", "simclr", *common, "--data-dir", str(unlabeled), "--out", str(run))
    assert result.exit_code == 0, result.output
    assert not (run / "eval.json").exists()  # no labels: not evaluated (the log says how)
    result = invoke("eval", str(run))
    assert result.exit_code == 2 and "data.eval_data_dir" in result.output
    result = invoke("eval", str(run), "--set", f"data.eval_data_dir={tmp_path / 'labelled'}")
    assert result.exit_code == 0 and "linear probe accuracy" in result.output, result.output


def test_a_list_file_of_images_is_an_unlabeled_training_set(tmp_path: Path) -> None:
    from selfsup.data.folders import FolderOptions

    _png_folder(tmp_path / "pool", {"x": 3}, size=20)
    listing = tmp_path / "train.txt"
    listing.write_text("# three images\npool/x/x-0.png\n\npool/x/x-2.png\n")
    data = load_dataset("image-folder", "train", data_dir=listing, options=FolderOptions(image_size=16))
    assert data.images.shape == (2, 1, 16, 16) and data.labels.tolist() == [-1, -1] and data.classes == []
    listing.write_text("pool/x/missing.png\n")
    with pytest.raises(DatasetFileError, match="line 1: no image file pool/x/missing.png"):
        load_dataset("image-folder", "train", data_dir=listing)


def test_one_run_reads_each_split_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Training, the online monitor and the evaluation take their images from the run's one DataPlan."""
    import dataclasses as dc

    import selfsup
    from selfsup.data import catalog

    reads: list[str] = []
    spec = catalog.DATASETS.get("synthetic")

    def counting(folder, split, options):  # type: ignore[no-untyped-def]
        reads.append(split)
        return spec.read(folder, split, options)

    monkeypatch.setitem(catalog.DATASETS._items, "synthetic", dc.replace(spec, read=counting))
    result = selfsup.train("simclr", out=tmp_path / "run", progress=False, dataset="synthetic", backbone="mlp",
                           epochs=1, batch_size=64, limit=256, sets={"eval.probe_epochs": 2, "log_every": 1})
    assert result.eval is not None and result.eval.split["scored_on"] == "test"
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "monitor_knn" in metrics  # the monitor ran, on the validation images of the same read
    assert sorted(reads) == ["test", "train"]


def _idx_folder(folder: Path, mean_pixel: float, n: int = 1200) -> Path:
    """IDX files of n random 28 x 28 images whose mean pixel is about ``mean_pixel`` (in [0, 1])."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        images = (rng.random((count, 28, 28)) < mean_pixel) * 255  # on/off pixels: the mean is the fraction on
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (count,)))
    return folder


@pytest.mark.parametrize("named, holds", [("mnist", "fashion-mnist"), ("fashion-mnist", "mnist")])
def test_one_idx_dataset_named_as_the_other_is_refused_with_exit_2(named: str, holds: str, tmp_path: Path) -> None:
    """MNIST and Fashion-MNIST share their file names and format: Fashion-MNIST's files under --dataset mnist
    trained on Fashion-MNIST while every record said MNIST. Told apart by the published mean pixel (0.1307 and
    0.2860)."""
    from click.testing import CliRunner

    from selfsup.cli import cli

    folder = _idx_folder(tmp_path / "files", {"mnist": 0.1307, "fashion-mnist": 0.2860}[holds])
    result = CliRunner().invoke(cli, ["train", "simclr", "--dataset", named, "--data-dir", str(folder), "--epochs",
                                      "1", "--set", "data.download=false", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"{folder} holds {holds}, not {named}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    assert len(load_dataset(holds, "train", folder, download=False)) == 1200  # named right, it reads


def test_idx_files_near_neither_mean_are_read_as_named_and_a_parent_folder_finds_them(tmp_path: Path) -> None:
    """A user's own IDX files (mean pixel 0.5 here) are read under either name; --data-dir naming the folder above
    fashion-mnist/ reads the files there (it stopped with 'missing train-images-idx3-ubyte')."""
    folder = _idx_folder(tmp_path / "fashion-mnist", 0.5)
    for name in ("mnist", "fashion-mnist"):
        assert len(load_dataset(name, "train", folder, download=False)) == 1200
    assert len(load_dataset("fashion-mnist", "test", tmp_path, download=False)) == 600
