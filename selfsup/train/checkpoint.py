"""Checkpoint files: written atomically, the previous one kept, read without running code.

``save_atomic`` writes to a temporary name and renames it over ``last.pt``; with
``keep_previous`` the file it replaces becomes ``previous.pt`` first, so a last checkpoint
that cannot be read (a full disk, a copy cut short) costs at most one checkpoint interval.

Reading goes through ``selfsup.data.readers.read_state`` (``torch.load(weights_only=True)``): tensors,
numbers, strings, lists, tuples and dicts only, so a crafted file cannot run code.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from selfsup.data.readers import UnsafeFileError, read_state
from selfsup.errors import CheckpointError

log = logging.getLogger(__name__)

PREVIOUS = "previous.pt"


def previous_path(path: Path) -> Path:
    return path.with_name(PREVIOUS)


def save_atomic(state: dict[str, Any], path: Path, keep_previous: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, temporary)
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def has_checkpoint(path: Path) -> bool:
    return path.exists() or previous_path(path).exists()


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``path`` (``checkpoints/last.pt``), or the previous checkpoint beside it, with a warning, when ``path`` is
    missing or cannot be read. A refused file (see ``read_state``) is never skipped over."""
    previous = previous_path(path)
    if not path.exists():
        if not previous.exists():
            raise CheckpointError(f"no checkpoint at {path}")
        log.warning("%s is missing; using the previous checkpoint %s", path, previous)
        return _as_state(read_state(previous, device), previous)
    try:
        return _as_state(read_state(path, device), path)
    except UnsafeFileError:
        raise
    except CheckpointError as error:
        if not previous.exists():
            raise
        try:
            state = _as_state(read_state(previous, device), previous)
        except CheckpointError:
            raise CheckpointError(f"{error}; the previous checkpoint {previous} cannot be read either") from None
        log.warning("%s; using the previous checkpoint %s (step %s): at most one checkpoint interval is lost",
                    error, previous, state.get("step", "?"))
        return state


def _as_state(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a selfsup checkpoint (no model state in it)")
    return state
