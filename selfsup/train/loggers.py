"""Where training records go besides ``metrics.jsonl`` (always written, the source of truth): TensorBoard.

``train.logger=tensorboard`` (``--logger tensorboard``; needs the ``tensorboard`` package, the ``tensorboard``
extra) writes event files to ``RUN/tensorboard/``: every numeric field of every metrics line as a scalar at its
step (``train/loss``, ``train/lr``, ``train/images_per_s``, the collapse monitor under ``collapse/``, the online
monitor under ``monitor/``), and figures (reconstructions) as images.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from selfsup.errors import ConfigError

GROUPS = {"embedding_std": "collapse", "effective_rank": "collapse", "collapsed": "collapse"}


class TensorBoardLogger:
    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--logger tensorboard needs the tensorboard package (pip install tensorboard, or "
                              "the package's tensorboard extra)") from None
        self.folder = folder
        self.writer = SummaryWriter(str(folder))

    @staticmethod
    def tag(key: str) -> str:
        if key.startswith("monitor_"):
            return f"monitor/{key.removeprefix('monitor_')}"
        return f"{GROUPS.get(key, 'train')}/{key}"

    def record(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(self.tag(key), value, step)
        self.writer.flush()  # a line every log_every steps: an interrupted run keeps its events

    def image(self, tag: str, path: Path, step: int) -> None:
        """A PNG the run wrote (plots/reconstructions.png) as an image."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as picture:
            self.writer.add_image(tag, np.asarray(picture.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_logger(kind: str, run_dir: Path | None) -> TensorBoardLogger | None:
    if kind == "jsonl" or run_dir is None:
        return None
    return TensorBoardLogger(run_dir / "tensorboard")
