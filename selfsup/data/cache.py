"""Where selfsup keeps what it can make again: downloaded datasets, decoded image folders, measured precision and
inference choices. ``$XDG_CACHE_HOME/selfsup`` (default ``~/.cache/selfsup``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "selfsup"


def decision_cache() -> Path:
    """The JSON file of the device measurements ``auto`` settings are decided by (precision, memory format,
    compile, inference), one entry per device and workload."""
    return cache_root() / "precision.json"
