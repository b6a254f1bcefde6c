"""The report's figures: metrics against a varied key, a comparison of configurations, training curves side by
side, and 2-d maps (t-SNE / UMAP) of each run's representation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.config import ConfigError
from selfsup.eval.plots import plt, save_figure
from selfsup.experiments.records import PLOTTED, Group, RunRecord, format_value, short_key
from selfsup.train.rundir import read_metrics, read_run_config

References = dict[str, dict[str, float]]  # label (raw pixels, random-init conv6) -> column -> level

REFERENCE_STYLES = ["--", ":", "-.", (0, (5, 1))]


def draw_references(axis: Any, references: References | None, column: str) -> None:
    """Dashed horizontal lines at each reference's level of ``column``: the bar a run has to clear."""
    for index, (label, levels) in enumerate((references or {}).items()):
        if column in levels:
            axis.axhline(levels[column], color="0.35", linewidth=1,
                         linestyle=REFERENCE_STYLES[index % len(REFERENCE_STYLES)], label=label)


def plot_metric_against(groups: list[Group], key: str, path: Path, references: References | None = None) -> Path:
    """Each plotted metric against a numeric varied key, one line per method (and other varied values);
    error bars are the standard deviation over seeds; log x when the values span orders of magnitude; the
    references (raw pixels, random init) as dashed lines."""
    xs = [g.values[key] for g in groups]
    positive = [x for x in xs if x > 0]
    log_x = len(positive) == len(xs) and max(positive) / min(positive) >= 100
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(4.6 * len(PLOTTED), 3.8), dpi=110)
    lines: dict[str, list[Group]] = {}
    for group in groups:
        other = {k: v for k, v in group.values.items() if k != key}
        label = group.method + "".join(f", {short_key(k)}={format_value(v)}" for k, v in other.items())
        lines.setdefault(label, []).append(group)
    for axis, column in zip(np.atleast_1d(axes), PLOTTED):
        for label, members in lines.items():
            members = sorted(members, key=lambda g: g.values[key])
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
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return save_figure(figure, path)


def plot_comparison(groups: list[Group], path: Path, references: References | None = None) -> Path:
    """Bars of each plotted metric per group (mean, standard deviation over seeds), the references as dashed
    lines."""
    one_method = len({g.method for g in groups}) == 1
    labels = ["\n".join(([] if one_method else [g.method]) + [f"{short_key(k)}={format_value(v)}" for k, v in g.values.items()])
              or g.method for g in groups]
    tilt = len(groups) > 3 or max(len(label) for label in labels) > 14
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(max(4.0, 0.7 * len(groups) + 1.5) * len(PLOTTED) / 1.5,
                                                          4.4 if tilt else 3.8), dpi=110)
    for axis, column in zip(np.atleast_1d(axes), PLOTTED):
        stats = [g.stats(column) for g in groups]
        means = [s[0] if s else math.nan for s in stats]
        errors = [s[1] if s else 0.0 for s in stats]
        axis.bar(range(len(groups)), means, yerr=errors, capsize=3, color="tab:blue")
        axis.set_xticks(range(len(groups)), labels, fontsize=7, rotation=35 if tilt else 0,
                        ha="right" if tilt else "center")
        draw_references(axis, references, column)
        finite = [m for m in means if not math.isnan(m)] + [v[column] for v in (references or {}).values()
                                                             if column in v]
        if finite:
            axis.set_ylim(max(0.0, min(finite) - 0.1), min(1.0, max(finite) + 0.05) if max(finite) <= 1 else None)
        axis.set_title(column.replace("_", " "))
        axis.grid(alpha=0.3, axis="y")
    if references:
        np.atleast_1d(axes)[0].legend(fontsize=7)
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
    axis.legend(fontsize=7)
    return save_figure(figure, path)


def embedding_map(run_dir: Path, kind: str = "tsne", points: int = 1000, seed: int = 0) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """2-d map of ``points`` test images' representations (t-SNE or UMAP), cached in the run directory."""
    cache = run_dir / f"embedding-map-{kind}-{points}.npz"
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


def project_2d(features: np.ndarray, kind: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, 2) t-SNE (scikit-learn) or UMAP (umap-learn, if installed) of (N, D) features, PCA to 50-d first."""
    from sklearn.decomposition import PCA

    features = features.astype(np.float32)
    if features.shape[1] > 50 and features.shape[0] > 50:
        features = PCA(50, random_state=seed).fit_transform(features)
    if kind == "umap":
        try:
            import umap
        except ImportError as error:
            raise ConfigError("--map umap needs the umap-learn package (pip install umap-learn); "
                              "--map tsne needs nothing more") from error
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features)
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (features.shape[0] - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def plot_embedding_maps(records: list[RunRecord], path: Path, kind: str = "tsne", points: int = 1000
                        ) -> Path | None:
    """One scatter per finished run: the map of its scored split (eval.split: test, or val) coloured by label."""
    maps = [(r, embedding_map(r.path, kind, points)) for r in records if r.status == "done"]
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
