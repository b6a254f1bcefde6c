"""Images for self-contained pages: one PNG data URI, or WebP sprite sheets that pages show tile by tile."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np


def thumbnail(image: np.ndarray) -> str:
    """A (C, H, W) uint8 image as a PNG data URI, losslessly."""
    buffer = io.BytesIO()
    as_pil(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def as_pil(image: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))))


class Sprites:
    """Images packed into WebP sprite sheets of ``COLUMNS`` x ``ROWS`` tiles, each sheet a CSS custom property on
    the page's root (``--sN: url(data:...)``), which Bokeh's shadow DOM inherits; a thumbnail is a div showing
    its tile. Sheets compress across images (a 28 px Fashion-MNIST image: ~370 bytes lossless against ~500 as
    its own PNG). ``quality`` None: lossless."""

    COLUMNS, ROWS = 32, 32

    def __init__(self) -> None:
        self.sheets: list[str] = []  # data URIs

    def add(self, images: np.ndarray, quality: int | None = None) -> list[tuple[int, int, int]]:
        """Pack ``images`` (N, C, H, W) uint8 into new sheets; each image's (sheet, column, row)."""
        per = self.COLUMNS * self.ROWS
        refs = []
        for start in range(0, len(images), per):
            chunk = images[start : start + per]
            _, channels, height, width = chunk.shape
            rows = -(-len(chunk) // self.COLUMNS)
            sheet = np.zeros((channels, rows * height, self.COLUMNS * width), np.uint8)
            for j, image in enumerate(chunk):
                r, c = divmod(j, self.COLUMNS)
                sheet[:, r * height : (r + 1) * height, c * width : (c + 1) * width] = image
                refs.append((len(self.sheets), c, r))
            buffer = io.BytesIO()
            picture = as_pil(sheet)
            if quality is None:
                picture.save(buffer, format="WEBP", lossless=True, method=4)  # 6: 4% smaller, 2.3x slower
            else:
                picture.save(buffer, format="WEBP", quality=quality, method=4)
            self.sheets.append("data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
        return refs

    def bytes(self) -> int:
        return sum(len(sheet) for sheet in self.sheets)

    def css(self) -> str:
        return ":root {" + "".join(f"--s{i}: url({sheet});" for i, sheet in enumerate(self.sheets)) + "}"
