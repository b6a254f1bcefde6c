"""Datasets: readers, the catalogue of named datasets, in-memory tensors and batch sources."""

from selfsup.data.catalog import DATASETS, DatasetNotFoundError, DatasetSpec, load_dataset, make_synthetic
from selfsup.data.dataset import Batch, BatchSource, ImageDataset, InMemorySource, to_float
from selfsup.data.readers import DatasetFileError, read_idx

__all__ = [
    "DATASETS", "Batch", "BatchSource", "DatasetFileError", "DatasetNotFoundError", "DatasetSpec", "ImageDataset",
    "InMemorySource", "load_dataset", "make_synthetic", "read_idx", "to_float",
]
