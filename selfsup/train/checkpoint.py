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
BEST = "best.pt"  # train.keep_best: the weights of the online monitor's best measurement


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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader, or a run killed mid-write, sees
    the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
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


def load_best(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``checkpoints/best.pt``: no fallback to another file, since no other holds those weights."""
    if not path.exists():
        raise CheckpointError(f"no best checkpoint at {path} (train.keep_best writes it at the monitor's first "
                              "measurement)")
    return _as_state(read_state(path, device), path)


def _as_state(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a selfsup checkpoint (no model state in it)")
    return state


def load_model_state(module: torch.nn.Module, state: dict[str, Any], path: Path, config: dict[str, Any]) -> None:
    """Load a checkpoint's model state into ``module``, built from the run's ``config``; a checkpoint written for
    another model (config.yaml edited to another backbone, method or image shape) is a CheckpointError naming both
    sides, not a state-dict traceback."""
    saved, own = state["model"], module.state_dict()
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} is not a selfsup checkpoint (its model state is a {type(saved).__name__})")
    differences = [f"{key} missing from the checkpoint" for key in own if key not in saved]
    differences += [f"{key} in the checkpoint only" for key in saved if key not in own]
    differences += [f"{key}: checkpoint {tuple(saved[key].shape)}, model {tuple(value.shape)}"
                    for key, value in own.items() if key in saved and isinstance(saved[key], torch.Tensor)
                    and tuple(saved[key].shape) != tuple(value.shape)]
    if differences:
        written = state.get("config") if isinstance(state.get("config"), dict) else {}
        context = state.get("context") if isinstance(state.get("context"), dict) else {}
        sides = (f"written for method {written.get('method', '?')}, backbone {written.get('backbone', '?')}, "
                 f"{context.get('in_channels', '?')}x{context.get('image_size', '?')}px images; the config asks "
                 f"for method {config.get('method')}, backbone {config.get('backbone')}")
        raise CheckpointError(f"{path} does not fit this run's model ({sides}): {len(differences)} parameter(s) "
                              f"differ, e.g. {'; '.join(differences[:3])}. Was config.yaml edited?")
    try:
        module.load_state_dict(saved)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: its model state cannot be loaded ({first[:200]})") from None
