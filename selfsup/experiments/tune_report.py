"""`selfsup report DIR` on a `selfsup tune` folder: the study at a glance.

Validation kNN against each searched parameter (finished trials, and pruned ones at their last measurement), the
parameters' importances, the monitor curves of the best trials, each beside the random-init level (the trials'
untrained measurement) and the raw-pixel level on the same validation images; tables of the best parameters, the
importances and every trial. Read from the files `selfsup tune` writes (tune.json, trials.csv, trials/NNNN).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from selfsup.coercion import read_json  # noqa: E402
from selfsup.errors import ReportError  # noqa: E402
from selfsup.eval.plots import save_figure  # noqa: E402
from selfsup.experiments.report import write_html, write_markdown  # noqa: E402
from selfsup.train.rundir import read_metrics

BEST_CURVES = 5


def read_trials(folder: Path) -> list[dict[str, Any]]:
    path = folder / "trials.csv"
    if not path.exists():
        raise ReportError(f"{folder} has tune.json but no trials.csv; rerun `selfsup tune` with the same --out")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def levels(folder: Path, trials: list[dict[str, Any]]) -> dict[str, float]:
    """The random-init and raw-pixel validation kNN, from the first trial that measured them."""
    for trial in trials:
        metrics = read_metrics(folder / "trials" / f"{int(trial['trial']):04d}")
        raw = next((m["monitor_raw_pixels_knn"] for m in metrics if "monitor_raw_pixels_knn" in m), None)
        start = next((m["monitor_knn"] for m in metrics if m.get("step") == 0 and "monitor_knn" in m), None)
        if raw is not None and start is not None:
            return {"random init": start, "raw pixels": raw}
    return {}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _reference_lines(axis: Any, reference: dict[str, float]) -> None:
    for (label, value), style in zip(reference.items(), ("--", ":")):
        axis.axhline(value, color="tab:red" if label == "random init" else "tab:gray", linestyle=style,
                     label=f"{label} {value:.3f}")


def plot_parameters(trials: list[dict[str, Any]], keys: list[str], reference: dict[str, float], path: Path) -> Path:
    """Validation kNN against each parameter: finished trials filled, pruned ones hollow at their last value."""
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), dpi=100, squeeze=False)
    for axis, key in zip(axes.flat, keys):
        for state, marker, face in (("complete", "o", "tab:blue"), ("pruned", "o", "none")):
            chosen = [t for t in trials if t["state"] == state and t.get(key, "") != ""]
            values = [(_number(t["val_knn"]) if state == "complete" else _number(t["last_reported"])) for t in chosen]
            points = [(t[key], v) for t, v in zip(chosen, values) if v is not None]
            if not points:
                continue
            xs = [_number(x) if _number(x) is not None else x for x, _ in points]
            axis.scatter(xs, [v for _, v in points], marker=marker, facecolors=face, edgecolors="tab:blue",
                         label=state)
        numbers = [_number(t.get(key, "")) for t in trials]
        numbers = [n for n in numbers if n is not None and n > 0]
        if numbers and len(numbers) == len([t for t in trials if t.get(key, "") != ""]) and \
                max(numbers) / min(numbers) > 30:
            axis.set_xscale("log")
        _reference_lines(axis, reference)
        axis.set_xlabel(key)
        axis.set_ylabel("validation kNN")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(keys):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7, framealpha=0.8)
    return save_figure(figure, path)


def plot_importances(importances: dict[str, float], path: Path) -> Path | None:
    if not importances:
        return None
    names = sorted(importances, key=importances.__getitem__)
    figure, axis = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2), dpi=100)
    axis.barh(names, [importances[n] for n in names], color="tab:blue")
    for y, name in enumerate(names):
        axis.text(importances[name], y, f" {importances[name]:.2f}", va="center")
    axis.set_xlabel("importance (fANOVA share of the variance of validation kNN)")
    axis.set_xlim(0, max(importances.values()) * 1.25 or 1)
    return save_figure(figure, path)


def plot_best_curves(folder: Path, trials: list[dict[str, Any]], reference: dict[str, float], path: Path
                     ) -> Path | None:
    """The online monitor's validation kNN against images seen for the best finished trials."""
    finished = sorted((t for t in trials if t["state"] == "complete" and _number(t["val_knn"]) is not None),
                      key=lambda t: -float(t["val_knn"]))[:BEST_CURVES]
    if not finished:
        return None
    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    for trial in finished:
        metrics = [m for m in read_metrics(folder / "trials" / f"{int(trial['trial']):04d}") if "monitor_knn" in m]
        axis.plot([m.get("images_seen", 0) for m in metrics], [m["monitor_knn"] for m in metrics], "o-",
                  label=f"trial {trial['trial']} ({float(trial['val_knn']):.3f})")
    _reference_lines(axis, reference)
    axis.set_xlabel("images seen")
    axis.set_ylabel("validation kNN")
    axis.grid(alpha=0.3)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return save_figure(figure, path)


def build_tune_report(folder: str | Path) -> dict[str, Path]:
    """report.md, report.html and plots/ for the study in ``folder``; returns their paths."""
    folder = Path(folder)
    summary = read_json(folder / "tune.json", "tune.json")
    trials = read_trials(folder)
    keys = [key for key in (trials[0].keys() if trials else []) if "." in key]
    reference = levels(folder, trials)
    plots_dir = folder / "plots"
    plots = [("validation kNN against each parameter", plot_parameters(trials, keys, reference,
                                                                       plots_dir / "tune-parameters.png"))]
    for label, made in (("parameter importances", plot_importances(summary.get("importances", {}),
                                                                   plots_dir / "tune-importances.png")),
                        ("monitor curves of the best trials", plot_best_curves(folder, trials, reference,
                                                                               plots_dir / "tune-best-curves.png"))):
        if made is not None:
            plots.append((label, made))
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary.get("trials", {}).items()))
    levels_text = ", ".join(f"{label} {value:.4f}" for label, value in reference.items())
    text = (f"selfsup tune {summary.get('method')}: {counts}; best validation kNN {summary.get('best_val_knn'):.4f} "
            f"(trial {summary.get('best_trial')}){'; ' + levels_text if levels_text else ''}"
            f"{_start_text(summary)}. Scored on the "
            f"validation split only; recipe.yaml holds the best trial's config.")
    tables = {
        "Best parameters": (["key", "value"], [[k, str(v)] for k, v in summary.get("best_params", {}).items()]),
        "Importances": (["key", "importance"], [[k, f"{v:.3f}"] for k, v in summary.get("importances", {}).items()]),
        "Trials": (["trial", "state", "val kNN", "last reported", *keys, "seconds"],
                   [[t["trial"] + (" (start)" if t.get("start") == "1" else ""), t["state"], _short(t["val_knn"]),
                     _short(t["last_reported"]),
                     *(_short(t.get(k, "")) for k in keys), t.get("seconds", "")] for t in trials]),
    }
    outputs = {"md": write_markdown(folder / "report.md", f"selfsup tune: {folder.name}", text, tables, plots),
               "html": write_html(folder / "report.html", f"selfsup tune: {folder.name}", text, tables, plots)}
    outputs.update({label: path for label, path in plots})
    return outputs


def _start_text(summary: dict[str, Any]) -> str:
    """The starting recipe's score (the study's first trial), when the study ran it."""
    value = summary.get("start_val_knn")
    if summary.get("start_trial") is None:
        return ""
    score = f"{value:.4f}" if isinstance(value, (int, float)) else "pruned or failed"
    return f"; the starting recipe (trial {summary['start_trial']}) {score}"


def _short(text: str) -> str:
    number = _number(text)
    return text if number is None or float(number).is_integer() else f"{number:.4g}"
