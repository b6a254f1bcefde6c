"""Reports over a folder of run directories (a sweep, or any runs): ``results.csv``, ``report.md``,
a self-contained ``report.html`` and ``plots/*.png``.

One row per run: its method, the keys that vary between the runs, every metric and the time.
Runs that differ only in ``train.seed`` are grouped into mean and standard deviation.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.config import ConfigError, resolve_key
from selfsup.errors import ReportError  # noqa: F401  (defined in the leaf module, kept importable here)
from selfsup.eval.plots import plt, save_figure
from selfsup.experiments.sweep import ERROR_FILE, cell_status, read_sweep_file
from selfsup.methods import get_method
from selfsup.train.rundir import (
    NEUTRAL_KEYS,
    RunDirectoryError,
    evaluation_differences,
    flatten,
    read_metrics,
    read_run_config,
)

# (column, path in eval.json, higher is better)
METRICS: list[tuple[str, tuple[str, ...]]] = [
    ("linear_probe", ("linear_probe", "accuracy")),
    ("knn", ("knn", "accuracy")),
    ("kmeans_nmi", ("kmeans", "nmi")),
    ("kmeans_ari", ("kmeans", "ari")),
    ("kmeans_accuracy", ("kmeans", "accuracy")),
    ("reconstruction_mse", ("reconstruction", "mse")),
]
PLOTTED = ["linear_probe", "knn", "kmeans_nmi"]
SEED_KEY = "train.seed"


@dataclass
class RunRecord:
    name: str
    path: Path
    method: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    error: str | None = None
    split: str = ""  # where eval.json's numbers were scored: test or val


def _dig(mapping: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def find_runs(folder: Path) -> list[Path]:
    """Run directories (holding a config.yaml) at or below ``folder``, sorted by path."""
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    return sorted(path.parent for path in folder.rglob("config.yaml") if "checkpoints" not in path.parts)


def read_run(run_dir: Path, root: Path) -> RunRecord:
    config = read_run_config(run_dir)
    record = RunRecord(str(run_dir.relative_to(root)) if run_dir != root else run_dir.name, run_dir, config.method,
                       cell_status(run_dir), flatten(config.to_dict()))
    if (run_dir / ERROR_FILE).exists():
        record.error = (run_dir / ERROR_FILE).read_text().splitlines()[0]
    evaluation = json.loads((run_dir / "eval.json").read_text()) if (run_dir / "eval.json").exists() else None
    stale = evaluation_differences(evaluation, config, eval_keys=False) if evaluation is not None else []
    if stale:  # numbers of another config: not this run's
        record.error = (f"eval.json was computed with another config ({'; '.join(stale[:3])}); "
                        f"run `selfsup eval {run_dir}`")
        record.status = "stale"
        evaluation = None
    if evaluation is not None:
        recorded = flatten(evaluation.get("config") or {})
        record.config.update({key: value for key, value in recorded.items() if key.startswith("eval.")})
        for column, path in METRICS:
            value = _dig(evaluation, path)
            if isinstance(value, (int, float)):
                record.metrics[column] = float(value)
        record.seconds = _dig(evaluation, ("training", "seconds"))
        record.split = _dig(evaluation, ("split", "scored_on")) or "test"  # files from before the split say nothing
    if (run_dir / "finetune.json").exists():
        for fraction, result in sorted(json.loads((run_dir / "finetune.json").read_text()).items()):
            record.metrics[f"finetune@{fraction}"] = result["pretrained"]["accuracy"]
            record.metrics[f"finetune_random_init@{fraction}"] = result["random_init"]["accuracy"]
    return record


def varied_keys(records: list[RunRecord], folder: Path) -> list[str]:
    """The sweep's grid keys (as full config keys) when there is a ``sweep.yaml``; else the config keys whose
    values differ between the runs (method parameters only among runs of one method)."""
    sweep = read_sweep_file(folder)
    if sweep:
        keys = []
        for key in sweep.get("grid", {}):
            for method in sweep.get("methods", []):
                try:
                    section, name = resolve_key(key, get_method(method).Config)
                except ConfigError:
                    continue
                full = name if section is None else f"{section}.{name}"
                if full not in keys:
                    keys.append(full)
                break
        return keys
    all_keys = sorted({key for r in records for key in r.config})
    keys = []
    for key in all_keys:
        if key in NEUTRAL_KEYS or key == "method":
            continue
        owners = records
        if key.startswith("params."):
            owners = [r for r in records if key in r.config]
            if len({r.method for r in owners}) > 1:
                continue
        if len({json.dumps(r.config.get(key)) for r in owners}) > 1:
            keys.append(key)
    return keys


def _short(key: str) -> str:
    return key.split(".")[-1]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_format(v) for v in value)
    return "" if value is None else str(value)


def _metric_columns(records: list[RunRecord]) -> list[str]:
    present = {key for r in records for key in r.metrics}
    ordered = [column for column, _ in METRICS if column in present]
    return ordered + sorted(present - set(ordered))


@dataclass
class Group:
    method: str
    values: dict[str, Any]  # the varied keys other than the seed
    runs: list[RunRecord]

    def stats(self, column: str) -> tuple[float, float, int] | None:
        values = [r.metrics[column] for r in self.runs if column in r.metrics]
        if not values:
            return None
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def group_runs(records: list[RunRecord], keys: list[str]) -> list[Group]:
    groups: dict[str, Group] = {}
    for record in records:
        values = {key: record.config.get(key) for key in keys if key != SEED_KEY}
        name = json.dumps([record.method, values], sort_keys=True, default=str)
        groups.setdefault(name, Group(record.method, values, [])).runs.append(record)
    return list(groups.values())


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order (1e-5 before 1e-1 before 10), then everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, json.dumps(value, default=str))


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


# -- plots ----------------------------------------------------------------------------------------

def plot_metric_against(groups: list[Group], key: str, path: Path) -> Path:
    """Each plotted metric against a numeric varied key, one line per method (and other varied values);
    error bars are the standard deviation over seeds; log x when the values span orders of magnitude."""
    xs = [g.values[key] for g in groups]
    positive = [x for x in xs if x > 0]
    log_x = len(positive) == len(xs) and max(positive) / min(positive) >= 100
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(4.6 * len(PLOTTED), 3.8), dpi=110)
    lines: dict[str, list[Group]] = {}
    for group in groups:
        other = {k: v for k, v in group.values.items() if k != key}
        label = group.method + "".join(f", {_short(k)}={_format(v)}" for k, v in other.items())
        lines.setdefault(label, []).append(group)
    for axis, column in zip(np.atleast_1d(axes), PLOTTED):
        for label, members in lines.items():
            members = sorted(members, key=lambda g: g.values[key])
            points = [(g.values[key], g.stats(column)) for g in members]
            points = [(x, s) for x, s in points if s is not None]
            if points:
                axis.errorbar([x for x, _ in points], [s[0] for _, s in points], yerr=[s[1] for _, s in points],
                              marker="o", capsize=3, label=label)
        if log_x:
            axis.set_xscale("log")
        axis.set_xlabel(_short(key))
        axis.set_title(column.replace("_", " "))
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return save_figure(figure, path)


def plot_comparison(groups: list[Group], path: Path) -> Path:
    """Bars of each plotted metric per group (mean, standard deviation over seeds)."""
    one_method = len({g.method for g in groups}) == 1
    labels = ["\n".join(([] if one_method else [g.method]) + [f"{_short(k)}={_format(v)}" for k, v in g.values.items()])
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
        finite = [m for m in means if not math.isnan(m)]
        if finite:
            axis.set_ylim(max(0.0, min(finite) - 0.1), min(1.0, max(finite) + 0.05) if max(finite) <= 1 else None)
        axis.set_title(column.replace("_", " "))
        axis.grid(alpha=0.3, axis="y")
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
    """Training loss against the step, one small panel per run, side by side."""
    curves = [(r, read_metrics(r.path)) for r in records]
    curves = [(r, [m for m in metrics if "loss" in m]) for r, metrics in curves]
    curves = [(r, metrics) for r, metrics in curves if metrics]
    if not curves:
        return None
    figure, axes = _small_multiples(len(curves), 3.6, 2.8)
    for axis, (record, metrics) in zip(axes, curves):
        axis.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], linewidth=1, color="tab:blue")
        axis.set_title(record.name, fontsize=8)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    return save_figure(figure, path)


def embedding_map(run_dir: Path, kind: str = "tsne", points: int = 1000, seed: int = 0) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """2-d map of ``points`` test images' representations (t-SNE or UMAP), cached in the run directory."""
    cache = run_dir / f"embedding-map-{kind}-{points}.npz"
    if cache.exists():
        stored = np.load(cache)
        return stored["coords"], stored["labels"]
    import torch

    from selfsup.api import evaluation_splits, load
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

def _cell(stats: tuple[float, float, int] | None) -> str:
    if stats is None:
        return ""
    mean, std, n = stats
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def build_report(folder: str | Path, embedding: str | None = "tsne", map_points: int = 1000) -> dict[str, Path]:
    """Write results.csv, report.md, report.html and plots/ into ``folder``; returns their paths."""
    folder = Path(folder)
    run_dirs = find_runs(folder)
    if not run_dirs:
        raise ReportError(f"{folder} holds no runs (no run directory with a config.yaml below it)")
    records = []
    for run_dir in run_dirs:
        try:
            records.append(read_run(run_dir, folder))
        except RunDirectoryError:
            continue
    if not records:
        raise ReportError(f"{folder} holds no readable runs")
    keys = varied_keys(records, folder)
    records.sort(key=lambda r: (r.method, *(_sort_key(r.config.get(k)) for k in keys)))
    columns = _metric_columns(records)
    plots_dir = folder / "plots"
    outputs: dict[str, Path] = {}

    csv_path = folder / "results.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "method", "status", "split", *keys, *columns, "training_seconds", "error"])
        for r in records:
            writer.writerow([r.name, r.method, r.status, r.split, *(_format(r.config.get(k)) for k in keys),
                             *(r.metrics.get(c, "") for c in columns), "" if r.seconds is None else r.seconds,
                             r.error or ""])
    outputs["csv"] = csv_path

    groups = group_runs([r for r in records if r.metrics], keys)
    plots: list[tuple[str, Path]] = []
    if groups:
        for key in keys:
            if key != SEED_KEY and _numeric([g.values[key] for g in groups]) and len({g.values[key] for g in groups}) > 1:
                plots.append((f"metrics against {_short(key)}",
                              plot_metric_against(groups, key, plots_dir / f"metric-vs-{_short(key)}.png")))
        plots.append(("comparison", plot_comparison(groups, plots_dir / "comparison.png")))
    curves = plot_training_curves(records, plots_dir / "training-curves.png")
    if curves:
        plots.append(("training curves", curves))
    if embedding:
        maps = plot_embedding_maps(records, plots_dir / f"embedding-{embedding}.png", embedding, map_points)
        if maps:
            plots.append((f"{embedding} maps", maps))

    seeds = any(len(g.runs) > 1 for g in groups)
    group_header = ["method", *(_short(k) for k in keys if k != SEED_KEY), "runs", *columns]
    group_rows = [[g.method, *(_format(g.values[k]) for k in keys if k != SEED_KEY), str(len(g.runs)),
                   *(_cell(g.stats(c)) for c in columns)] for g in groups]
    run_header = ["run", "method", "status", "split", *(_short(k) for k in keys), *columns, "training s"]
    run_rows = [[r.name, r.method, r.status + (f" ({r.error})" if r.error else ""), r.split,
                 *(_format(r.config.get(k)) for k in keys), *(f"{r.metrics[c]:.4f}" if c in r.metrics else ""
                                                            for c in columns),
                 "" if r.seconds is None else f"{r.seconds:.0f}"] for r in records]
    title = f"selfsup report: {folder.name}"
    summary = (f"{len(records)} runs ({sum(r.status == 'done' for r in records)} done, "
               f"{sum(r.status == 'failed' for r in records)} failed); varied: {', '.join(keys) or 'nothing'}; "
               f"scored on: {', '.join(sorted({r.split for r in records if r.split})) or 'nothing yet'} "
               "(val: the validation split held out of train, for choices; test: final figures)")

    md = [f"# {title}", "", summary, ""]
    if seeds:
        md += ["## Mean ± standard deviation over seeds", "", *_md_table(group_header, group_rows), ""]
    md += ["## Runs", "", *_md_table(run_header, run_rows), "", "## Plots", ""]
    md += [f"![{label}](plots/{path.name})" for label, path in plots]
    (folder / "report.md").write_text("\n".join(md) + "\n")
    outputs["md"] = folder / "report.md"

    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(summary)}</p>"]
    if seeds:
        body += ["<h2>Mean ± standard deviation over seeds</h2>", _html_table(group_header, group_rows)]
    body += ["<h2>Runs</h2>", _html_table(run_header, run_rows), "<h2>Plots</h2>"]
    for label, path in plots:
        data = base64.b64encode(path.read_bytes()).decode()
        body.append(f"<figure><img alt='{html.escape(label)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(label)}</figcaption></figure>")
    (folder / "report.html").write_text(HTML_PAGE.format(title=html.escape(title), body="\n".join(body)))
    outputs["html"] = folder / "report.html"
    for label, path in plots:
        outputs[label] = path
    return outputs


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th {{ background: #1f4e79; color: #fff; padding: 6px 10px; text-align: left; }}
td {{ border-bottom: 1px solid #ccc; padding: 5px 10px; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figure {{ margin: 1.5em 0; }}
</style></head>
<body>
{body}
</body></html>
"""
