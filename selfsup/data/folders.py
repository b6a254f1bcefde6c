"""Your own images: a folder with one subfolder per class, with or without ``train/`` and ``test/``.

- Size and channels come from the config (``data.image_size``, default 32; ``data.channels``: 1, 3, or
  ``None`` = auto, 1 when every image is grayscale), not from the files' own sizes. ``data.resize``:
  ``crop`` scales the shorter side to the size and centre-crops (no distortion), ``stretch`` resizes both sides.
- With ``train/`` and ``test/``, classes are matched between the splits by name (the training split's sorted
  class names define the labels); a class that only one split has is an error naming both lists.
- Without them, the class subfolders are split into train and test, class-balanced: ``data.test_fraction`` of
  the images, in proportion to the class counts (``class_balanced_indices``, as the validation split is drawn),
  with ``data.val_seed``; the log says so.
- A file that cannot be decoded is named in the error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from selfsup.data.dataset import ImageDataset, class_balanced_indices
from selfsup.data.readers import IMAGE_SUFFIXES, decode_image
from selfsup.errors import DatasetFileError

log = logging.getLogger(__name__)

GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass(frozen=True)
class FolderOptions:
    """How an image folder is read (the ``data.*`` fields that concern folders)."""

    image_size: int = 32
    channels: int | None = None  # None: auto
    resize: str = "crop"
    test_fraction: float = 0.2
    seed: int = 0


def class_files(root: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted), for each subfolder of ``root`` that holds images, and ``""`` -> the
    images directly in ``root`` (unlabeled), when there are any: the one listing of a folder's images."""
    found = {}
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if loose:
        found[""] = loose
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            found[folder.name] = files
    if not found:
        raise DatasetFileError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or in class subfolders")
    return found


def training_classes(root: Path) -> dict[str, list[Path]]:
    """``class_files`` as a training split reads it: images directly in a folder that has class subfolders are
    left out (said in the log); a folder with no class subfolders is one unlabeled entry ``""``."""
    found = class_files(root)
    if "" in found and len(found) > 1:
        log.warning("%s: %d images directly in the folder are ignored beside its class subfolders", root,
                    len(found.pop("")))
    return found


def detect_channels(paths: list[Path]) -> int:
    """1 when every image is grayscale, else 3 (reads the headers only)."""
    from PIL import Image, UnidentifiedImageError

    for path in paths:
        try:
            with Image.open(path) as image:
                if image.mode not in GRAYSCALE_MODES:
                    return 3
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
            raise DatasetFileError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from None
    return 1


def list_file(path: Path) -> list[Path]:
    """The images a list file names, one path per line (relative to the file's folder; blank lines and # comments
    skipped); a missing one is named."""
    paths = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetFileError(f"{path}: cannot read this list of image files ({error})") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        image = (path.parent / line).resolve()
        if not image.is_file():
            raise DatasetFileError(f"{path}, line {number}: no image file {line}")
        paths.append(image)
    if not paths:
        raise DatasetFileError(f"{path}: lists no images")
    return paths


def read_folder(folder: Path, split: str, options: FolderOptions) -> ImageDataset:
    """``split`` (train or test) of the image folder at ``folder`` (or of the list file ``folder`` names: unlabeled
    images), decoded into memory."""
    paths, labels, classes = folder_files(folder, split, options)
    dataset = ImageDataset(torch.from_numpy(decoded(paths, options)), torch.tensor(labels, dtype=torch.int64), classes)
    root = folder.parent if folder.is_file() else folder
    dataset.files = [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path in paths]
    return dataset


def every_image(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Every image of the folder (or list file) at ``folder``, for embedding and scoring rather than training: with
    ``train/``, the images of every split folder labelled by ``train/``'s class names; otherwise every class
    subfolder; images directly in a folder are unlabeled (-1)."""
    if folder.is_file():
        paths = list_file(folder)
        return paths, [-1] * len(paths), []
    roots = [folder / name for name in ("train", "test") if (folder / name).is_dir()] or [folder]
    listed = [class_files(root) for root in roots]
    classes = sorted(name for name in listed[0] if name)
    paths, labels = [], []
    for files in listed:
        for name in sorted(files):
            paths += files[name]
            labels += [classes.index(name) if name in classes else -1] * len(files[name])
    return paths, labels, classes


def folder_files(folder: Path, split: str, options: FolderOptions) -> tuple[list[Path], list[int], list[str]]:
    """The image files of ``split`` (train, test, or all: ``every_image``) of the folder (or list file) at
    ``folder``, their labels (-1: unlabeled) and the class names: the one listing every reader of folders uses (in
    memory, streamed, embed, anomaly)."""
    if split == "all":
        return every_image(folder)
    if folder.is_file():
        if split != "train":
            raise DatasetFileError(f"{folder} lists unlabeled images, so it has no {split} split; evaluate on a "
                                   "labelled folder with --set data.eval_data_dir=FOLDER")
        paths = list_file(folder)
        return paths, [-1] * len(paths), []
    if (folder / "train").is_dir():
        train = training_classes(folder / "train")
        classes = sorted(train)
        if split == "train":
            files = train
        else:
            if not (folder / split).is_dir():
                raise DatasetFileError(f"{folder}: has train/ but no {split}/ subfolder")
            files = training_classes(folder / split)
            if set(files) - set(classes):
                raise DatasetFileError(
                    f"{folder}: the class folders of {split}/ and train/ differ: {split}/ has "
                    f"{', '.join(sorted(files))}; train/ has {', '.join(classes)} (only in {split}/: "
                    f"{', '.join(sorted(set(files) - set(classes)))}); labels are matched by name")
        paths = [path for name in classes if name in files for path in files[name]]
        labels = [index for index, name in enumerate(classes) if name in files for _ in files[name]]
    else:
        files = training_classes(folder)
        classes = sorted(files)
        every = [path for name in classes for path in files[name]]
        every_label = [index for index, name in enumerate(classes) for _ in files[name]]
        if classes == [""]:  # unlabeled: everything trains, nothing to score
            if split != "train":
                raise DatasetFileError(f"{folder} holds unlabeled images (no class subfolders), so it has no {split} "
                                       "split; evaluate on a labelled folder with --set data.eval_data_dir=FOLDER")
            paths, labels = every, every_label
        else:
            size = min(len(every) - 1, round(options.test_fraction * len(every)))
            test = set(class_balanced_indices(torch.tensor(every_label), size, options.seed).tolist())
            log.warning("%s has no train/ and test/ subfolders: %d of its %d images (data.test_fraction=%g, "
                        "class-balanced, drawn with data.val_seed=%d) are the test split", folder, len(test), len(every),
                        options.test_fraction, options.seed)
            keep = [i for i in range(len(every)) if (i in test) == (split == "test")]
            paths, labels = [every[i] for i in keep], [every_label[i] for i in keep]
    if classes == [""]:  # the unlabeled folder's one pseudo-class
        classes, labels = [], [-1] * len(paths)
    return paths, labels, classes


def decoded(paths: list[Path], options: FolderOptions) -> np.ndarray:
    """The images decoded to (N, C, S, S) uint8, cached under ~/.cache/selfsup/folders/ keyed by every file's path,
    size and modification time and the decoding settings: a second run starts in seconds (no file is opened), a
    changed file decodes again. ``options.channels`` None: detected on a cache miss."""
    import hashlib

    from selfsup.data.cache import cache_root

    digest = hashlib.sha1(f"{options.image_size}|{options.channels or 'auto'}|{options.resize}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    cache = cache_root() / "folders" / f"{digest.hexdigest()}.npy"
    if cache.exists():
        try:
            return np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            log.warning("%s: unreadable cache, decoding again", cache)
    channels = options.channels or detect_channels(paths)
    images = np.stack([decode_image(path, options.image_size, channels, options.resize) for path in paths])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp.npy")
        np.save(temporary, images)
        temporary.replace(cache)
    except OSError as error:
        log.warning("cannot cache decoded images at %s: %s", cache, error)
    return images
