"""Downloading a dataset's files from its official source: MD5-checked, written through a temporary file, archives
unpacked safely (tar's ``data`` filter)."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    url: str
    md5: str
    filename: str
    extract: bool = False  # a tar archive whose contents are unpacked next to it


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(spec: Any, target: Path) -> None:
    """Download every file of ``spec`` into ``target``, verify its MD5, unpack archives."""
    from tqdm.auto import tqdm

    target.mkdir(parents=True, exist_ok=True)
    for item in spec.downloads:
        destination = target / item.filename
        if not (destination.exists() and md5sum(destination) == item.md5):
            log.info("downloading %s", item.url)
            with tempfile.NamedTemporaryFile(dir=target, delete=False) as handle:
                temporary = Path(handle.name)
                with urllib.request.urlopen(item.url, timeout=30) as response:  # noqa: S310 (fixed https/http sources)
                    total = int(response.headers.get("Content-Length") or 0)
                    with tqdm(total=total or None, unit="B", unit_scale=True, desc=item.filename) as bar:
                        for chunk in iter(lambda: response.read(1 << 20), b""):
                            handle.write(chunk)
                            bar.update(len(chunk))
            actual = md5sum(temporary)
            if actual != item.md5:
                temporary.unlink()
                raise OSError(f"{item.url}: checksum mismatch (md5 {actual}, expected {item.md5})")
            shutil.move(temporary, destination)
        if item.extract:
            with tarfile.open(destination) as archive:
                archive.extractall(target, filter="data")
