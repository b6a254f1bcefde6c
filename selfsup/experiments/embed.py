"""Embeddings out: the representation of every image of a folder or a dataset split, as a trained run computes
it (``selfsup embed``), for use anywhere else.

A folder is read as the run's training images were (its image size, channels and resize policy): class
subfolders give labels, images directly in the folder are unlabeled (-1). The output is ``.npy`` (the (N, D)
float32 array, with a CSV beside it naming each row's file and label) or ``.pt`` (a dict of ``features``,
``files``, ``labels``, ``classes``).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from selfsup.data import DATASETS, ImageDataset, load_dataset
from selfsup.data.folders import FolderOptions, read_folder
from selfsup.errors import ConfigError
from selfsup.eval import extract_features
from selfsup.train.rundir import read_run_config

FORMATS = (".npy", ".pt")


@dataclass
class Embeddings:
    features: torch.Tensor  # (N, D) float32
    labels: torch.Tensor  # (N,) int64; -1 unlabeled
    files: list[str] = field(default_factory=list)  # the image files, in row order (empty for a built-in dataset)
    classes: list[str] = field(default_factory=list)


def read_images(folder: Path, size: int, channels: int, resize: str = "crop") -> tuple[ImageDataset, list[str]]:
    """Every image below ``folder`` (``data.folders.every_image``: class subfolders give labels, images directly
    in a folder -1; with ``train/``, every split by ``train/``'s classes), read and decoded as training reads
    folders, and the files (paths under ``folder``)."""
    dataset = read_folder(folder, "all", FolderOptions(size, channels, resize))
    return dataset, [str(folder / name) for name in dataset.files]


def embed_images(run_dir: str | Path, images: str | Path, split: str = "test", device: str = "cpu",
                 progress: bool = True, precision: str = "auto") -> Embeddings:
    """The run's representation of every image in ``images``: a folder, or a dataset name (its ``split``); in the
    inference mode the device measured fastest (``precision="auto"``, bf16 where it pays) or in fp32."""
    from selfsup.api import inference_mode, load

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    method = load(run_dir, device)
    context = method.context
    if Path(images).is_dir():
        dataset, files = read_images(Path(images), context.image_size, context.in_channels, config.data.resize)
    elif str(images) in DATASETS:
        dataset, files = load_dataset(str(images), split, config.data.data_dir, config.data.download), []
    else:
        raise ConfigError(f"--images {images}: neither a folder nor a dataset ({', '.join(DATASETS.names())})")
    if (dataset.channels, dataset.image_size) != (context.in_channels, context.image_size):
        raise ConfigError(f"{images} holds {dataset.channels}x{dataset.image_size}px images; {run_dir} was trained on "
                          f"{context.in_channels}x{context.image_size}px")
    eval_config = dataclasses.replace(config.eval, precision=precision)
    mode = inference_mode(eval_config, torch.device(device), method, dataset)
    features = extract_features(method.embed, dataset, torch.device(device), config.eval.extract_batch_size,
                                progress, mode.bf16, mode.channels_last)
    return Embeddings(features, dataset.labels.cpu(), files, dataset.classes)


def write_embeddings(embeddings: Embeddings, out: Path) -> list[Path]:
    """``out`` (.npy or .pt); with .npy also ``out`` with .csv: row, file, label. Returns the files written."""
    if out.suffix not in FORMATS:
        raise ConfigError(f"--out {out}: the format is the suffix, one of {', '.join(FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".pt":
        torch.save({"features": embeddings.features, "labels": embeddings.labels, "files": embeddings.files,
                    "classes": embeddings.classes}, out)
        return [out]
    np.save(out, embeddings.features.numpy())
    index = out.with_suffix(".csv")
    with index.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "file", "label", "class"])
        for row, label in enumerate(embeddings.labels.tolist()):
            name = embeddings.classes[label] if 0 <= label < len(embeddings.classes) else ""
            writer.writerow([row, embeddings.files[row] if embeddings.files else "", label, name])
    return [out, index]
