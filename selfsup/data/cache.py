"""Where selfsup keeps what it can make again: downloaded datasets, decoded image folders, measured precision and
inference choices. ``$XDG_CACHE_HOME/selfsup`` (default ``~/.cache/selfsup``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "selfsup"
