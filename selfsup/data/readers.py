"""File readers: each dataset reader returns uint8 images (N, C, H, W) and int64 labels (N,); ``read_state``
reads a torch file (checkpoint, neighbour file) without running code.

Every reader names the file it was reading when the file is truncated or corrupt.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.errors import CheckpointError, DatasetFileError


class UnsafeFileError(CheckpointError):
    """A file that holds objects other than tensors and plain values: refused, never unpickled."""


def read_state(path: Path, device: torch.device | str = "cpu", what: str = "checkpoint") -> Any:
    """One file's contents, loaded without running code; a clear error for a refused, truncated or corrupt file."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on the way to refusing a file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        lines = [line.strip() for line in str(error).splitlines()]
        refused = next((line for line in lines if "GLOBAL" in line), None)
        if refused is not None:  # the file names a function or class to call: a crafted or foreign file
            raise UnsafeFileError(
                f"{path}: refused to load this {what}: it holds objects other than tensors and plain values "
                f"({refused[:200]}); selfsup never runs code from a file. Was it written by selfsup?") from None
        raise CheckpointError(f"{path}: cannot read {what} (not a file torch.save wrote, or truncated or "
                              "corrupt)") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            UnicodeDecodeError, OverflowError, MemoryError, zipfile.BadZipFile, struct.error) as error:
        first = str(error).strip().split(". ")[0].splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: cannot read {what} ({first}); the file is truncated or corrupt") from None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DatasetFileError(f"{path}: cannot read ({error}); the file is truncated or corrupt") from error


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST format), raw or gzipped, into a numpy array."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetFileError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise DatasetFileError(f"{path}: unknown IDX element type 0x{dtype_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[dtype_code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetFileError(
            f"{path}: truncated or corrupt IDX file: {len(data)} bytes, expected {expected} for shape {shape}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetFileError(f"{images_path}: expected (N, H, W) images, got shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DatasetFileError(
            f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}"
        )
    return torch.from_numpy(images.astype(np.uint8)).unsqueeze(1).contiguous(), torch.from_numpy(labels.astype(np.int64))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays, and refuses every other global: a CIFAR batch holds
    nothing else, and a crafted one cannot name a function to call."""

    ALLOWED = {(module, name) for package in ("numpy.core", "numpy._core") for module, name in (
        (f"{package}.multiarray", "_reconstruct"), (f"{package}.multiarray", "scalar"),
        (f"{package}.numeric", "_frombuffer"))} | {("numpy", "ndarray"), ("numpy", "dtype"),
                                                      ("_codecs", "encode")}  # bytes, as Python 3 writes protocol 2

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: a CIFAR batch holds only arrays, lists and bytes")
        return super().find_class(module, name)


def read_cifar_batches(paths: list[Path], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10/100 python pickle batches: ``data`` (N, 3072) uint8 and a label list."""
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                batch = _ArrayUnpickler(handle, encoding="bytes").load()
        except Exception as error:  # noqa: BLE001  (a corrupt pickle fails in many ways; none runs code: see above)
            raise DatasetFileError(f"{path}: cannot unpickle CIFAR batch ({type(error).__name__}: "
                                   f"{str(error)[:200]}); the file is truncated or corrupt") from None
        if not isinstance(batch, dict):
            raise DatasetFileError(f"{path}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
        data = batch.get(b"data")
        batch_labels = batch.get(label_key.encode())
        if data is None or batch_labels is None:
            raise DatasetFileError(f"{path}: not a CIFAR batch (keys {sorted(k.decode() for k in batch)})")
        try:
            data = np.asarray(data, dtype=np.uint8)
            batch_labels = np.asarray(batch_labels, dtype=np.int64)
        except (TypeError, ValueError, OverflowError) as error:
            raise DatasetFileError(f"{path}: not a CIFAR batch ({error})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != data.shape[0]:
            raise DatasetFileError(f"{path}: unexpected CIFAR batch shape {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def read_stl_binary(images_path: Path, labels_path: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """STL-10 binary files: column-major 3x96x96 uint8 images; labels 1..10 (unlabeled: -1)."""
    data = _read_bytes(images_path)
    size = 3 * 96 * 96
    if len(data) == 0 or len(data) % size:
        raise DatasetFileError(f"{images_path}: {len(data)} bytes is not a whole number of 96x96x3 images")
    images = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    if labels_path is None:
        labels = np.full(images.shape[0], -1, dtype=np.int64)
    else:
        labels = np.frombuffer(_read_bytes(labels_path), dtype=np.uint8).astype(np.int64) - 1
        if labels.shape[0] != images.shape[0]:
            raise DatasetFileError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images")
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def decode_image(path: Path, size: int, channels: int, resize: str = "crop") -> np.ndarray:
    """Decode, convert to ``channels`` and resize to ``size`` x ``size``; (C, size, size) uint8. ``crop``: the
    shorter side to ``size``, then a centre crop (no distortion); ``stretch``: both sides to ``size``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if resize == "stretch":
                image = image.resize((size, size), Image.BILINEAR)
            width, height = image.size
            scale = size / min(width, height)
            image = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.BILINEAR)
            width, height = image.size
            left, top = (width - size) // 2, (height - size) // 2
            image = image.crop((left, top, left + size, top + size))
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
            MemoryError) as error:  # Pillow's plugins fail on corrupt files with any of these
        raise DatasetFileError(f"{path}: cannot decode image ({type(error).__name__}: {str(error)[:200]})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
