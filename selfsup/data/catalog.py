"""The dataset catalogue: where each dataset's files are found, how they are fetched and read."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from selfsup.data.cache import cache_root
from selfsup.data.dataset import ImageDataset
from selfsup.data.download import Download, fetch
from selfsup.data.folders import FolderOptions, read_folder
from selfsup.data.readers import (
    DatasetFileError,
    read_cifar_batches,
    read_idx_pair,
    read_stl_binary,
)
from selfsup.errors import ConfigError, DatasetNotFoundError
from selfsup.registry import Registry

log = logging.getLogger(__name__)

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    channels: int
    image_size: int
    num_classes: int
    # (folder, split, options) -> dataset; ``options`` (FolderOptions: size, channels, resize, test split) matter to
    # configurable datasets (image folders) and are ignored by the others
    read: Callable[[Path, str, FolderOptions], ImageDataset]
    marker: str  # a file (relative to the folder) whose presence means the dataset is there
    downloads: tuple[Download, ...] = ()
    splits: tuple[str, ...] = ("train", "test")
    train_split: str = "train"  # the split self-supervised training uses
    needs_files: bool = True
    debian_package: str | None = None
    classes: list[str] = field(default_factory=list)
    # images held out of `train` as the default validation split; None: splits.default_val_size (10% of the labelled
    # training images, class-balanced, at most 5,000; none when a class has under 20 images)
    val_size: int | None = None
    configurable: bool = False  # size, channels and splits come from the config (data.image_size, ...), via options
    expects: str = ""  # the files a folder must hold, as said when --data-dir does not hold them
    # the published mean pixel value (in [0, 1]) of the whole training split, for datasets that share a file format
    # with another (MNIST and Fashion-MNIST): a folder of the other one's files is refused instead of read as this
    pixel_mean: float | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def folder_options(data) -> FolderOptions | None:  # type: ignore[no-untyped-def]
    """The folder options of a ``DataConfig`` (None for the built-in datasets, which have their own size)."""
    if not DATASETS.get(data.dataset).configurable:
        if data.image_size is not None or data.channels is not None:
            raise ConfigError(f"data.image_size and data.channels apply to image folders; {data.dataset} has its own "
                              "size and channels")
        return None
    return FolderOptions(data.image_size or 32, data.channels, data.resize, data.test_fraction, data.val_seed)


def _register(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name)(spec)


def _idx_reader(classes: list[str]) -> Callable[[Path, str], ImageDataset]:
    def read(folder: Path, split: str, options: FolderOptions) -> ImageDataset:
        prefix = "train" if split == "train" else "t10k"
        images_path = _first_existing(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = _first_existing(folder, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx_pair(images_path, labels_path)
        return ImageDataset(images, labels, classes)

    return read


def _first_existing(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise DatasetFileError(f"{folder}: missing {stem}(.gz)")


IDX_FILES = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
             "(.gz or not)")
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_register(DatasetSpec(
    name="fashion-mnist", expects=IDX_FILES,
     channels=1, image_size=28, num_classes=10, read=_idx_reader(FASHION_CLASSES),
    marker="t10k-labels-idx1-ubyte*", debian_package="dataset-fashion-mnist", classes=FASHION_CLASSES,
    pixel_mean=0.2860,
    downloads=(
        Download(_FASHION_URL + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train-images-idx3-ubyte.gz"),
        Download(_FASHION_URL + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "train-labels-idx1-ubyte.gz"),
        Download(_FASHION_URL + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "t10k-images-idx3-ubyte.gz"),
        Download(_FASHION_URL + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "t10k-labels-idx1-ubyte.gz"),
    ),
))

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_MNIST_CLASSES = [str(i) for i in range(10)]
_register(DatasetSpec(
    name="mnist", expects=IDX_FILES,
     channels=1, image_size=28, num_classes=10, read=_idx_reader(_MNIST_CLASSES),
    marker="t10k-labels-idx1-ubyte*", classes=_MNIST_CLASSES, pixel_mean=0.1307,
    downloads=(
        Download(_MNIST_URL + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train-images-idx3-ubyte.gz"),
        Download(_MNIST_URL + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "train-labels-idx1-ubyte.gz"),
        Download(_MNIST_URL + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "t10k-images-idx3-ubyte.gz"),
        Download(_MNIST_URL + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "t10k-labels-idx1-ubyte.gz"),
    ),
))


def _cifar_reader(subdir: str, train_files: list[str], test_files: list[str], label_key: str,
                  classes: list[str]) -> Callable[[Path, str], ImageDataset]:
    def read(folder: Path, split: str, options: FolderOptions) -> ImageDataset:
        root = folder / subdir if (folder / subdir).is_dir() else folder
        names = train_files if split == "train" else test_files
        images, labels = read_cifar_batches([root / name for name in names], label_key)
        return ImageDataset(images, labels, classes)

    return read


_register(DatasetSpec(
    name="cifar10", expects="cifar-10-batches-py/ with data_batch_1..5 and test_batch",
    channels=3, image_size=32, num_classes=10, classes=CIFAR10_CLASSES,
    read=_cifar_reader("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
                       CIFAR10_CLASSES),
    marker="*test_batch",
    downloads=(Download("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                        "cifar-10-python.tar.gz", extract=True),),
))
_CIFAR100_CLASSES = [str(i) for i in range(100)]
_register(DatasetSpec(
    name="cifar100", expects="cifar-100-python/ with train and test",
    channels=3, image_size=32, num_classes=100, classes=_CIFAR100_CLASSES,
    read=_cifar_reader("cifar-100-python", ["train"], ["test"], "fine_labels", _CIFAR100_CLASSES),
    marker="*test",
    downloads=(Download("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                        "cifar-100-python.tar.gz", extract=True),),
))


def _read_stl(folder: Path, split: str, options: FolderOptions) -> ImageDataset:
    root = folder / "stl10_binary" if (folder / "stl10_binary").is_dir() else folder
    parts = []
    for part in split.split("+"):
        labels_path = None if part == "unlabeled" else root / f"{part}_y.bin"
        parts.append(read_stl_binary(root / f"{part}_X.bin", labels_path))
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    return ImageDataset(images, labels, STL10_CLASSES)


_register(DatasetSpec(
    name="stl10", expects="stl10_binary/ with train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin",
    channels=3, image_size=96, num_classes=10, read=_read_stl, marker="*test_X.bin",
    splits=("train", "test", "unlabeled", "train+unlabeled"), train_split="train+unlabeled", classes=STL10_CLASSES,
    val_size=0,
    downloads=(Download("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb",
                        "stl10_binary.tar.gz", extract=True),),
))

_register(DatasetSpec(  # size and channels are the config's (data.image_size, data.channels): see data/folders.py
    name="image-folder", channels=3, image_size=32, num_classes=0, read=read_folder, marker="*", configurable=True,
))


def _read_digits(folder: Path, split: str, options: FolderOptions) -> ImageDataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy((digits.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(labels))
    index = order[:cut] if split == "train" else order[cut:]
    return ImageDataset(images[index].contiguous(), labels[index], [str(i) for i in range(10)])


_register(DatasetSpec(
    name="digits", val_size=300, channels=1, image_size=8, num_classes=10, read=_read_digits, marker="",
    needs_files=False,
    classes=[str(i) for i in range(10)],
))


def make_synthetic(n: int, seed: int, size: int = 16, channels: int = 3, num_classes: int = 10) -> ImageDataset:
    """Procedural images whose class is a shape and colour, randomly placed, scaled and noised.

    Small, instant and learnable: a test set for pipelines, never a benchmark.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    coords = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    centre = (torch.rand(n, 2, generator=g) - 0.5) * 0.8
    scale = 0.35 + 0.3 * torch.rand(n, generator=g)
    dx = (xx[None] - centre[:, 0, None, None]) / scale[:, None, None]
    dy = (yy[None] - centre[:, 1, None, None]) / scale[:, None, None]
    shapes = torch.stack([
        (dx**2 + dy**2 < 1).float(),  # disc
        ((dx.abs() < 1) & (dy.abs() < 1)).float(),  # square
        ((dx.abs() + dy.abs()) < 1).float(),  # diamond
        ((dx.abs() < 1) & (dy.abs() < 0.3)).float(),  # horizontal bar
        ((dy.abs() < 1) & (dx.abs() < 0.3)).float(),  # vertical bar
        (((dx**2 + dy**2) < 1) & ((dx**2 + dy**2) > 0.4)).float(),  # ring
        ((dy > -1) & (dy < 1) & (dx.abs() < (1 - dy) / 2)).float(),  # triangle
        (((dx.abs() < 1) & (dy.abs() < 0.25)) | ((dy.abs() < 1) & (dx.abs() < 0.25))).float(),  # cross
        (((dx - dy).abs() < 0.35) & (dx.abs() < 1)).float(),  # diagonal
        ((torch.sin(4 * dx) > 0) & (dx**2 + dy**2 < 1)).float(),  # striped disc
    ])  # (classes, n, H, W)
    mask = shapes[labels % 10, torch.arange(n)]  # (n, H, W)
    palette = torch.tensor([[1, .2, .2], [.2, 1, .2], [.2, .2, 1], [1, 1, .2], [1, .2, 1],
                            [.2, 1, 1], [1, .6, .2], [.6, .2, 1], [.9, .9, .9], [.5, 1, .5]])
    colour = palette[labels % 10][:, :channels] if channels == 3 else torch.ones(n, 1)
    background = 0.25 * torch.rand(n, channels, 1, 1, generator=g)
    images = background + mask[:, None] * colour[:, :, None, None] * (0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=g))
    images = images + 0.08 * torch.randn(images.shape, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return ImageDataset(images, labels, [f"class{i}" for i in range(num_classes)])


_register(DatasetSpec(
    name="synthetic", val_size=400, channels=3, image_size=16, num_classes=10, marker="", needs_files=False,
    read=lambda folder, split, options: make_synthetic(2000 if split == "train" else 500,
                                                       seed=0 if split == "train" else 1),
    classes=[f"class{i}" for i in range(10)],
))


def candidate_folders(name: str, data_dir: str | Path | None) -> list[Path]:
    """Where we look, in order: --data-dir (itself and <dir>/<name>), $SELFSUP_DATA/<name>, Debian's, the cache."""
    folders: list[Path] = []
    if data_dir is not None:
        folders += [Path(data_dir), Path(data_dir) / name]
    if os.environ.get("SELFSUP_DATA"):
        root = Path(os.environ["SELFSUP_DATA"])
        folders += [root / name, root]
    folders += [Path("/usr/share/datasets") / name, cache_root() / name]
    return folders


def locate(spec: DatasetSpec, data_dir: str | Path | None, download: bool) -> Path:
    """The folder (or list file) ``spec`` is read from. An explicit ``data_dir`` is the only place looked at: when
    it does not hold the dataset (and cannot be downloaded into it), the run is refused naming the folder and the
    files expected there; nothing else is read in its place."""
    if not spec.needs_files:
        if data_dir is not None:
            raise ConfigError(f"data.data_dir {data_dir}: {spec.name} is built in and reads no files; drop "
                              "--data-dir, or name the dataset the folder holds (--dataset image-folder for images)")
        return Path(".")
    if data_dir is not None:
        return _explicit_folder(spec, Path(data_dir), download)
    folders = candidate_folders(spec.name, None)
    for folder in folders:
        if folder.is_dir() and _has_marker(folder, spec.marker):
            return folder
    if download and spec.downloads:
        target = cache_root() / spec.name
        try:
            fetch(spec, target)
            return target
        except OSError as error:
            log.warning("download of %s failed: %s", spec.name, error)
    hints = ["  - put the files in a folder and pass --data-dir FOLDER (or set SELFSUP_DATA)"]
    if spec.debian_package:
        hints.insert(0, f"  - apt-get install -y {spec.debian_package}   (puts them in /usr/share/datasets/{spec.name}/)")
    if spec.downloads:
        hints.append(f"  - when online, selfsup downloads them from {spec.downloads[0].url.rsplit('/', 1)[0]}/ "
                     "(on by default; data.download=true)")
    raise DatasetNotFoundError(
        f"dataset {spec.name!r} not found; looked in: {', '.join(str(f) for f in folders)}\nTo get it:\n" + "\n".join(hints)
    )


def _explicit_folder(spec: DatasetSpec, folder: Path, download: bool) -> Path:
    """``folder`` (or ``folder/<name>``) when it holds ``spec``'s files; else downloaded into it, or refused."""
    if spec.configurable:
        if folder.is_dir() or folder.is_file():
            return folder
        raise DatasetNotFoundError(f"data.data_dir {folder}: no such folder or list file")
    candidates = (folder, folder / spec.name)
    for nested in (False, True):  # the files themselves before a folder that holds them one level down
        for candidate in candidates:
            if candidate.is_dir() and _has_marker(candidate, spec.marker, nested):
                return candidate
    if download and spec.downloads:
        try:
            fetch(spec, folder)
            return folder
        except OSError as error:
            log.warning("download of %s into %s failed: %s", spec.name, folder, error)
    state = "does not exist" if not folder.exists() else ("is not a folder" if not folder.is_dir()
                                                           else "does not hold it")
    raise DatasetNotFoundError(
        f"data.data_dir {folder} {state}: {spec.name} expects {spec.expects or spec.marker} there (or in "
        f"{folder / spec.name}); nothing else was read in its place. Name the dataset the folder holds with --dataset "
        "(image-folder for a folder of images), or drop --data-dir to use the installed copy")


def detect_dataset(folder: Path) -> str | None:
    """The dataset a folder holds, for ``--data-dir`` without ``--dataset``: ``image-folder`` when it holds images
    (or is a list file), a built-in dataset whose files are in it (the folder's name decides between datasets with
    the same files, else the first registered), None when it holds neither."""
    from selfsup.data.readers import IMAGE_SUFFIXES

    if folder.is_file():
        return "image-folder"
    if not folder.is_dir():
        return None
    matches = [spec.name for spec in map(DATASETS.get, DATASETS.names()) if spec.needs_files and not spec.configurable
               and _has_marker(folder, spec.marker)]
    named = [name for name in matches if name in folder.resolve().parts[-1]]
    if named or matches:
        return max(named, key=len) if named else matches[0]
    for depth in ("*", "*/*", "*/*/*"):
        if any(path.suffix.lower() in IMAGE_SUFFIXES for path in folder.glob(depth)):
            return "image-folder"
    return None


def _has_marker(folder: Path, pattern: str, nested: bool = True) -> bool:
    """Whether ``folder`` holds ``pattern``, or with ``nested`` holds a folder that does (an archive's subfolder)."""
    return any(folder.glob(pattern)) or (nested and any(folder.glob(f"*/{pattern}")))


# how far a split's mean pixel may be from its dataset's published value (the test splits of MNIST and
# Fashion-MNIST are 0.002 and 0.001 from their training splits'; the two datasets are 0.155 apart)
PIXEL_MEAN_TOLERANCE = 0.02


def check_identity(spec: DatasetSpec, dataset: ImageDataset, folder: Path) -> None:
    """Refuse a whole split that is another dataset of the same file format: MNIST's files read as Fashion-MNIST or
    the reverse (the readers cannot tell them apart). A split whose mean pixel is near neither is read: it may be
    a user's own files in that format."""
    if spec.pixel_mean is None or len(dataset) < 1000:
        return
    mean = dataset.images.sum(dtype=torch.int64).item() / dataset.images.numel() / 255.0  # exact, no float copy
    if abs(mean - spec.pixel_mean) <= PIXEL_MEAN_TOLERANCE:
        return
    for other in map(DATASETS.get, DATASETS.names()):
        if other.name != spec.name and other.pixel_mean is not None and \
                abs(mean - other.pixel_mean) <= PIXEL_MEAN_TOLERANCE:
            raise DatasetFileError(
                f"{folder} holds {other.name}, not {spec.name}: its images' mean pixel is {mean:.4f}, "
                f"{other.name}'s is {other.pixel_mean} and {spec.name}'s {spec.pixel_mean}; nothing was trained. "
                f"Pass --dataset {other.name}, or point --data-dir at {spec.name}'s files")


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None,
                 download: bool = True, options: FolderOptions | None = None) -> ImageDataset:
    """Read a dataset split into memory as uint8 tensors; ``options``: how a configurable dataset (an image
    folder) is read."""
    spec = DATASETS.get(name)
    if split not in spec.splits:
        raise ValueError(f"dataset {name!r} has splits {', '.join(spec.splits)}; got {split!r}")
    folder = locate(spec, data_dir, download)
    dataset = spec.read(folder, split, options or FolderOptions())
    check_identity(spec, dataset, folder)
    dataset.name = name
    dataset.source = str(folder.resolve()) if spec.needs_files else "built in"
    return dataset
