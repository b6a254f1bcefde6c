"""The report's figures: metrics against a varied key, a comparison of configurations, training curves side by
side, and 2-d maps (t-SNE / UMAP) of each run's representation."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import ConfigError
from selfsup.eval.plots import plt, save_figure
from selfsup.experiments.records import PLOTTED, Group, RunRecord, short_key
from selfsup.train.checkpoint import has_checkpoint
from selfsup.train.rundir import read_metrics, read_run_config

log = logging.getLogger(__name__)

References = dict[str, dict[str, float]]  # label (raw pixels, random-init conv6) -> column -> level

REFERENCE_STYLES = ["--", ":", "-.", (0, (5, 1))]


def draw_references(axis: Any, references: References | None, column: str) -> None:
    """Dashed horizontal lines at each reference's level of ``column``: the bar a run has to clear."""
    for index, (label, levels) in enumerate((references or {}).items()):
        if column in levels:
            axis.axhline(levels[column], color="0.35", linewidth=1,
                         linestyle=REFERENCE_STYLES[index % len(REFERENCE_STYLES)], label=label)


def plot_metric_against(lines: dict[str, list[Group]], key: str, path: Path, references: References | None = None
                        ) -> Path:
    """Each plotted metric against a swept numeric key (``lines``: from records.sweep_lines), one line per method
    and other swept values; error bars are the standard deviation over seeds; log x when the values span orders
    of magnitude; the references (raw pixels, random init) as dashed lines. The legend sits below the panels,
    never over the data."""
    xs = [g.values[key] for members in lines.values() for g in members]
    positive = [x for x in xs if x > 0]
    log_x = len(positive) == len(xs) and max(positive) / min(positive) >= 100
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(4.6 * len(PLOTTED), 3.6), dpi=110)
    for axis, column in zip(np.atleast_1d(axes), PLOTTED):
        for label, members in lines.items():
            points = [(g.values[key], g.stats(column)) for g in members]
            points = [(x, s) for x, s in points if s is not None]
            if points:
                axis.errorbar([x for x, _ in points], [s[0] for _, s in points], yerr=[s[1] for _, s in points],
                              marker="o", capsize=3, label=label)
        draw_references(axis, references, column)
        if log_x:
            axis.set_xscale("log")
        axis.set_xlabel(short_key(key))
        axis.set_title(column.replace("_", " "))
        axis.grid(alpha=0.3)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    return save_with_legend_below(figure, handles, labels, path)


def save_with_legend_below(figure: Any, handles: list[Any], labels: list[str], path: Path) -> Path:
    """Lay out the panels, then put the legend in a band below them (the figure grows to hold it)."""
    if not handles:
        return save_figure(figure, path)
    columns = min(len(labels), 3)
    rows = math.ceil(len(labels) / columns)
    band = 0.22 * rows + 0.2  # inches
    width, height = figure.get_size_inches()
    figure.set_size_inches(width, height + band)
    figure.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    return save_figure(figure, path, rect=(0, band / (height + band), 1, 1))


def plot_ranking(groups: list[Group], labels: list[str], column: str, path: Path,
                 references: References | None = None) -> Path:
    """One metric of every group as horizontal bars, best first: short labels, the value (± the standard
    deviation over seeds, when there are several) at each bar, the references as labelled vertical lines."""
    rows = sorted(((stats, label) for stats, label in zip((g.stats(column) for g in groups), labels)
                   if stats is not None), key=lambda row: -row[0][0])
    levels = [(name, values[column]) for name, values in (references or {}).items() if column in values]
    figure, axis = plt.subplots(figsize=(7.5, 0.9 + 0.34 * max(len(rows), 1)), dpi=110)
    if not rows:
        axis.set_axis_off()
        return save_figure(figure, path)
    means = [stats[0] for stats, _ in rows]
    spreads = [stats[1] if stats[2] > 1 else 0.0 for stats, _ in rows]
    positions = list(range(len(rows)))[::-1]  # the best at the top
    axis.barh(positions, means, xerr=spreads if any(spreads) else None, capsize=3, color="tab:blue", height=0.65)
    axis.set_yticks(positions, [label for _, label in rows], fontsize=8)
    low = min(means + [level for _, level in levels])
    high = max(m + e for m, e in zip(means, spreads))
    high = max([high] + [level for _, level in levels])
    span = max(high - low, 1e-3)
    axis.set_xlim(low - 0.25 * span, high + 0.35 * span)  # room for the values right of the bars
    for position, (stats, _), spread in zip(positions, rows, spreads):
        text = f"{stats[0]:.4f}" + (f" ± {stats[1]:.4f} ({stats[2]} seeds)" if stats[2] > 1 else "")
        axis.text(stats[0] + spread + 0.02 * span, position, text, va="center", fontsize=7)
    for index, (name, level) in enumerate(levels):
        axis.axvline(level, color="0.35", linewidth=1, linestyle=REFERENCE_STYLES[index % len(REFERENCE_STYLES)])
        axis.text(level, len(rows) - 0.35 + 0.3 * index, f" {name} {level:.4f}", fontsize=7, color="0.25",
                  va="bottom", clip_on=False)
    axis.set_ylim(-0.6, len(rows) - 0.2 + 0.3 * len(levels))
    axis.set_title(column.replace("_", " ") + " (best first)", fontsize=10)
    axis.grid(alpha=0.3, axis="x")
    return save_figure(figure, path)


def _small_multiples(count: int, width: float, height: float, columns: int = 4) -> tuple[Any, list[Any]]:
    """A figure of ``count`` panels, ``columns`` to a row; the unused cells of the last row hidden."""
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), dpi=100, squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    return figure, list(axes.flat[:count])


def plot_training_curves(records: list[RunRecord], path: Path) -> Path | None:
    """Training loss against the step: one panel per method, its runs overlaid."""
    by_method: dict[str, list[tuple[RunRecord, list[dict[str, Any]]]]] = {}
    for record in records:
        metrics = [m for m in read_metrics(record.path) if "loss" in m]
        if metrics:
            by_method.setdefault(record.method, []).append((record, metrics))
    if not by_method:
        return None
    figure, axes = _small_multiples(len(by_method), 4.2, 3.0, columns=3)
    for axis, (method, runs) in zip(axes, by_method.items()):
        for record, metrics in runs:
            axis.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], linewidth=1, label=record.name)
        axis.set_title(method, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if len(runs) <= 8:
            axis.legend(fontsize=6)
    return save_figure(figure, path)


def plot_accuracy_against_time(records: list[RunRecord], path: Path) -> Path | None:
    """The online monitor's validation kNN accuracy against training seconds, every run that logged it on one axis,
    from its untrained start (the random-init level of its encoder), with the raw-pixel level dashed."""
    curves, raw = [], {}
    for record in records:
        metrics = read_metrics(record.path)
        points = [(m.get("train_seconds", 0.0), m["monitor_knn"]) for m in metrics if "monitor_knn" in m]
        if len(points) > 1:
            curves.append((record, points))
        raw.update({m["monitor_raw_pixels_knn"]: None for m in metrics if "monitor_raw_pixels_knn" in m})
    if not curves:
        return None
    figure, axis = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for record, points in curves:
        axis.plot([t for t, _ in points], [a for _, a in points], marker=".", linewidth=1, label=record.name)
    if len(raw) == 1:
        axis.axhline(next(iter(raw)), color="0.35", linestyle="--", linewidth=1, label="raw pixels")
    axis.set_xlabel("training seconds")
    axis.set_ylabel("validation kNN accuracy (monitor)")
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()  # below the axis: inside, a legend of many runs hides curves
    return save_with_legend_below(figure, handles, labels, path)


def embedding_map(run_dir: Path, kind: str = "tsne", points: int = 1000, seed: int = 0) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """2-d map of ``points`` test images' representations (t-SNE or UMAP), cached in the run directory."""
    cache = _map_cache(run_dir, kind, points)
    if cache.exists():
        stored = np.load(cache)
        return stored["coords"], stored["labels"]
    import torch

    from selfsup.api import load
    from selfsup.data.plan import evaluation_splits
    from selfsup.eval import extract_features

    config = read_run_config(run_dir)
    method = load(run_dir)
    _, test = evaluation_splits(config.data, config.eval, config.train.seed)
    if len(test) > points:
        test = test.random_subset(points, seed)
    features = extract_features(method.embed, test, torch.device("cpu"), 512, progress=False).numpy()
    coords = project_2d(features, kind, seed)
    labels = test.labels.cpu().numpy()
    np.savez(cache, coords=coords, labels=labels)
    return coords, labels


def project_2d(features: np.ndarray, kind: str = "tsne", seed: int = 0, iterations: int = 1000) -> np.ndarray:
    """(N, 2) t-SNE (scikit-learn; ``iterations`` of gradient descent, 250 of them early exaggeration) or UMAP
    (umap-learn, if installed) of (N, D) features, PCA to 50-d first; fewer than 5 rows are laid on a line."""
    from sklearn.decomposition import PCA

    features = features.astype(np.float32)
    if features.shape[0] < 5:
        return np.stack([np.arange(features.shape[0], dtype=np.float32), np.zeros(features.shape[0], np.float32)], 1)
    if features.shape[1] > 50 and features.shape[0] > 50:
        features = PCA(50, random_state=seed).fit_transform(features)
    if kind == "umap":
        try:
            import umap
        except ImportError as error:
            raise ConfigError("umap needs the umap-learn package (pip install umap-learn); tsne needs nothing "
                              "more") from error
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features).astype(np.float32)
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (features.shape[0] - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed, max_iter=iterations).fit_transform(
        features).astype(np.float32)


def _map_cache(run_dir: Path, kind: str, points: int) -> Path:
    return run_dir / f"embedding-map-{kind}-{points}.npz"


def plot_embedding_maps(records: list[RunRecord], path: Path, kind: str = "tsne", points: int = 1000
                        ) -> Path | None:
    """One scatter per finished run: the map of its scored split (eval.split: test, or val) coloured by label.
    A run with neither a checkpoint nor a cached map (a run committed without its checkpoint) is left out, with
    a warning: its other tables and plots need only its files."""
    maps = []
    for record in (r for r in records if r.status == "done"):
        if not (_map_cache(record.path, kind, points).exists()
                or has_checkpoint(record.path / "checkpoints" / "last.pt")):
            log.warning("%s has no checkpoint, so it is left out of the %s maps", record.path, kind)
            continue
        maps.append((record, embedding_map(record.path, kind, points)))
    if not maps:
        return None
    figure, axes = _small_multiples(len(maps), 3.4, 3.4)
    for axis, (record, (coords, labels)) in zip(axes, maps):
        axis.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="tab10", s=3, vmin=0, vmax=9)
        axis.set_title(record.name, fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"{kind.upper()} of each run's scored-split representations (test, or validation for runs "
                    "scored on val), coloured by label", fontsize=10)
    return save_figure(figure, path)


# -- the report ----------------------------------------------------------------------------------
