"""Margins of trained runs over the baselines: what `selfsup compare` prints and the demo ends with."""

from __future__ import annotations

from pathlib import Path

from selfsup.errors import RunDirectoryError
from selfsup.eval.result import Evaluation, collapse_note

# (label, Evaluation property)
PROTOCOLS = [("linear probe", "probe_accuracy"), ("kNN", "knn_accuracy"), ("k-means NMI", "nmi")]


def read_evaluation(path: Path) -> Evaluation:
    """``eval.json`` of a run directory (or the file itself)."""
    file = path / "eval.json" if path.is_dir() else path
    if not file.exists():
        raise RunDirectoryError(f"{path} has no eval.json: train it (or `selfsup eval` it) first")
    evaluation = Evaluation.read(file)
    if not evaluation.has_figures:
        raise RunDirectoryError(f"{path} has no figures: {collapse_note(evaluation)}")
    return evaluation


def margins(runs: dict[str, Evaluation], baselines: dict[str, Evaluation]) -> tuple[list[str], list[list[str]]]:
    """A table: one row per run and baseline with each protocol's figure, and each run's margin (in points)
    over every baseline. Refuses to compare figures scored on different splits."""
    splits = {name: e.scored_on for name, e in {**runs, **baselines}.items()}
    if len(set(splits.values())) > 1:
        raise RunDirectoryError(f"these figures were scored on different splits ({splits}); compare like with like")
    header = ["representation", *(label for label, _ in PROTOCOLS)]
    rows = []
    for name, evaluation in {**runs, **baselines}.items():
        rows.append([name, *(f"{getattr(evaluation, p):.4f}" for _, p in PROTOCOLS)])
    for name, evaluation in runs.items():
        for base_name, base in baselines.items():
            rows.append([f"{name} - {base_name}",
                         *(f"{100 * (getattr(evaluation, p) - getattr(base, p)):+.1f} pts" for _, p in PROTOCOLS)])
    return header, rows


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    return "\n".join(lines)
