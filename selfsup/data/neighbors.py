"""The neighbour file (seed 004): each training image's nearest neighbours in a learned representation, written
by ``selfsup neighbors RUN`` (``selfsup.experiments.neighbors``) and read by nn-byol.

A dict of tensors and plain values (read without running code): ``indices`` (N, k), ``metric``, ``k``,
``dataset``, ``size`` and ``fingerprint`` (SHA-1 of the images in order), so a reader can check that it trains
on the same images in the same order, plus what the mining measured.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from selfsup.data.dataset import ImageDataset
from selfsup.data.readers import read_state
from selfsup.errors import RunDirectoryError


def fingerprint(dataset: ImageDataset) -> str:
    """SHA-1 of the images in order: the same images in another order give another fingerprint."""
    return hashlib.sha1(dataset.images.cpu().contiguous().numpy().tobytes()).hexdigest()


def save_neighbors(record: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, path)
    return path


def resolve_neighbor_file(path: str | Path) -> Path:
    """A neighbour file, or a run directory holding exactly one ``neighbors-*.pt``."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("neighbors-*.pt"))
        if not found:
            raise RunDirectoryError(f"{path} has no neighbour file; run `selfsup neighbors {path}` first")
        if len(found) > 1:
            raise RunDirectoryError(f"{path} has several neighbour files ({', '.join(f.name for f in found)}); "
                                    "pass one of them as --set neighbors=FILE")
        return found[0]
    if not path.exists():
        raise RunDirectoryError(f"neighbour file {path} does not exist; run `selfsup neighbors RUN` first")
    return path


def load_neighbors(path: str | Path) -> dict[str, Any]:
    path = resolve_neighbor_file(path)
    record = read_state(path, "cpu", "neighbour file")
    if not isinstance(record, dict):
        raise RunDirectoryError(f"{path} is not a selfsup neighbour file (it holds a {type(record).__name__})")
    fields = {"indices": torch.Tensor, "size": int, "dataset": str, "fingerprint": str, "metric": str}
    wrong = [name for name, kind in fields.items() if not isinstance(record.get(name), kind)]
    if wrong or record["indices"].ndim != 2 or record["indices"].dtype != torch.long:
        raise RunDirectoryError(f"{path} is not a selfsup neighbour file, or is corrupt ("
                                f"{', '.join(wrong) or 'indices'} missing or of the wrong type)")
    record["path"] = str(path)
    return record
