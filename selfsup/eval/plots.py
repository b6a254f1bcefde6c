"""PNG plots a person can look at (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(figure: Any, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay out (the panels within ``rect`` of the figure, when given), write the PNG (creating its folder) and free
    the figure."""
    figure.tight_layout(rect=rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_loss(metrics: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Per-step loss (thin) and per-epoch mean (markers) against the step."""
    steps = [m["step"] for m in metrics if "loss" in m]
    losses = [m["loss"] for m in metrics if "loss" in m]
    epoch_steps = [m["step"] for m in metrics if "epoch_loss" in m]
    epoch_losses = [m["epoch_loss"] for m in metrics if "epoch_loss" in m]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    axis.plot(steps, losses, linewidth=0.8, alpha=0.6, label="loss (logged steps)")
    if epoch_steps:
        axis.plot(epoch_steps, epoch_losses, "o-", label="epoch mean")
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.set_title(title or "training loss")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


def plot_monitor(metrics: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """The online monitor: validation kNN accuracy against training time, beside the random-init level (the
    first measurement, before any step) and the raw-pixel level on the same images. None without a monitor."""
    points = [m for m in metrics if "monitor_knn" in m]
    levels = next((m for m in metrics if "monitor_raw_pixels_knn" in m), None)
    if not points:
        return None
    seconds = [m["train_seconds"] for m in points]
    accuracy = [m["monitor_knn"] for m in points]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    axis.plot(seconds, accuracy, "o-", label="this run (validation kNN)")
    if points[0]["step"] == 0:
        axis.axhline(accuracy[0], color="tab:red", linestyle="--", label=f"random init {accuracy[0]:.3f}")
    if levels is not None:
        raw = levels["monitor_raw_pixels_knn"]
        axis.axhline(raw, color="tab:gray", linestyle=":", label=f"raw pixels {raw:.3f}")
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("kNN accuracy (validation)")
    seen = points[-1].get("images_seen", 0)
    axis.set_title(f"{title or 'online monitor'}: {seen:,} images seen")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


def plot_image_rows(rows: list[tuple[str, Any]], path: Path, title: str = "") -> Path:
    """A grid of images: one labelled row per (label, (N, C, H, W) tensor in [0, 1]), N columns."""
    columns = max(images.shape[0] for _, images in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.1 * columns, 1.2 * len(rows) + 0.4), dpi=110,
                                squeeze=False)
    for r, (label, images) in enumerate(rows):
        images = images.detach().float().clamp(0, 1).cpu()
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if c < images.shape[0]:
                image = images[c].permute(1, 2, 0).numpy()
                if image.shape[2] == 1:
                    axis.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
                else:
                    axis.imshow(image)
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)


def plot_eigenspace(metrics: list[dict[str, Any]], path: Path, title: str = "", top: int = 8) -> Path | None:
    """Seed 001's Figure 2: over training, the top eigenvalues of F and of the predictor Wp (each divided by its
    largest), the alignment cos(u_j, Wp u_j) along F's top eigenvectors, and the asymmetry of Wp."""
    records = [m for m in metrics if "eigen_F" in m]
    if not records:
        return None
    steps = [m["step"] for m in records]

    def normalised(key: str) -> list[list[float]]:
        return [[v / max(abs(m[key][0]), 1e-12) for v in m[key][:top]] for m in records]

    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6), dpi=110)
    panels = [(normalised("eigen_F"), "eigenvalues of F / max"), (normalised("eigen_Wp"), "eigenvalues of Wp / max"),
              ([m["alignment"][:top] for m in records], "alignment cos(u_j, Wp u_j)")]
    for axis, (values, label) in zip(axes, panels):
        for j in range(min(top, min(len(v) for v in values))):
            axis.plot(steps, [v[j] for v in values], linewidth=1, label=f"j={j + 1}")
        axis.set_title(label, fontsize=9)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[2].legend(fontsize=6, ncol=2)
    axes[3].plot(steps, [m["asymmetry"] for m in records], "o-", markersize=3)
    axes[3].set_title("asymmetry ||Wp - Wp^T|| / ||Wp||", fontsize=9)
    axes[3].set_xlabel("step")
    axes[3].grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)
