"""The runs below a folder as records: each run's config, status and metrics read from its directory, the keys
that vary between runs, and groups of runs that differ only in the seed (``selfsup report`` builds on these)."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfsup.coercion import read_json
from selfsup.config import resolve_key
from selfsup.errors import ConfigError, ReportError, RunDirectoryError
from selfsup.eval.result import HEADLINE, Evaluation, collapse_note
from selfsup.experiments.sweep import ERROR_FILE, cell_status, read_sweep_file
from selfsup.methods import get_method
from selfsup.train.rundir import NEUTRAL_KEYS, evaluation_differences, flatten, read_run_config

log = logging.getLogger(__name__)

# (column, Evaluation property), in the report's column order
METRICS: list[tuple[str, str]] = [*HEADLINE, ("reconstruction_mse", "reconstruction_mse")]
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
    data: str = ""  # the data source eval.json records: folder, images, content fingerprint


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
    path = run_dir / "eval.json"
    try:
        evaluation = Evaluation.read(path) if path.exists() else None
    except RunDirectoryError as error:  # one broken file costs its run's figures, not the report
        log.warning("%s", error)
        record.status, record.error = "unreadable", str(error)
        return record
    if evaluation is not None and evaluation.collapsed:
        record.status, record.error = "collapsed", collapse_note(evaluation)
    stale = evaluation_differences(evaluation.to_dict(), config, eval_keys=False) if evaluation is not None else []
    if stale:  # numbers of another config: not this run's
        record.error = (f"eval.json was computed with another config ({'; '.join(stale[:3])}); "
                        f"run `selfsup eval {run_dir}`")
        record.status = "stale"
        evaluation = None
    if evaluation is not None and evaluation.data:
        record.data = data_note(evaluation.data)
    if evaluation is not None and evaluation.has_figures:
        recorded = flatten(evaluation.config or {})
        record.config.update({key: value for key, value in recorded.items() if key.startswith("eval.")})
        for column, name in METRICS:
            value = getattr(evaluation, name)
            if isinstance(value, (int, float)):
                record.metrics[column] = float(value)
        record.seconds = evaluation.training_seconds
        record.split = evaluation.scored_on
    if (run_dir / "finetune.json").exists():
        try:
            for fraction, result in sorted(read_json(run_dir / "finetune.json", "finetune.json").items()):
                record.metrics[f"finetune@{fraction}"] = float(result["pretrained"]["accuracy"])
                record.metrics[f"finetune_random_init@{fraction}"] = float(result["random_init"]["accuracy"])
        except (RunDirectoryError, KeyError, TypeError, ValueError) as error:
            log.warning("%s: fine-tuning figures left out (%s)", run_dir / "finetune.json", error)
    return record


def data_note(data: dict[str, Any]) -> str:
    """The data source in a report cell: folder, images trained on or fitted, content fingerprint."""
    return f"{data.get('source', '?')} ({data.get('train_images', '?')} train images, {data.get('fingerprint', '?')})"


def reference_records(records: list[RunRecord]) -> list[RunRecord]:
    """The raw-pixel and random-init levels for the finished runs' dataset and encoder, measured by the same
    protocols on the same splits (``experiments.baselines.reference_levels``: computed once, cached), as rows
    with status ``reference``; one pair per distinct dataset, encoder and evaluation setting."""
    from selfsup.experiments.baselines import reference_levels

    seen: dict[str, RunRecord] = {}
    configs = {}
    for record in records:
        if record.status != "done" or not record.metrics:
            continue
        config = read_run_config(record.path)
        eval_config = dataclasses.replace(config.eval, **{key.removeprefix("eval."): value for key, value in
                                                            record.config.items() if key.startswith("eval.")})
        configs[json.dumps([config.data.dataset, config.backbone, dataclasses.asdict(eval_config)],
                           sort_keys=True, default=str)] = (config, eval_config)
    several = len(configs) > 1
    for config, eval_config in configs.values():
        for name, evaluation in reference_levels(config.data, config.backbone, eval_config).items():
            label = "raw pixels" if name == "raw-pixels" else f"random-init {config.backbone}"
            if several:
                label += f" ({config.data.dataset}, {eval_config.split})"
            seen[label] = RunRecord(label, record.path, "reference", "reference", {}, evaluation.headline(), None, None,
                                    evaluation.scored_on)
    return list(seen.values())


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


def short_key(key: str) -> str:
    return key.split(".")[-1]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return "" if value is None else str(value)


def metric_columns(records: list[RunRecord]) -> list[str]:
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


def within_method_keys(groups: list[Group], keys: list[str]) -> list[str]:
    """The keys whose value differs between groups of one method: what a sweep varied. The other keys differ
    only between methods (their recipes), and a plot against them would compare methods, not values."""
    within = []
    for key in keys:
        if key == SEED_KEY:
            continue
        seen: dict[str, set[str]] = {}
        for group in groups:
            seen.setdefault(group.method, set()).add(json.dumps(group.values.get(key), default=str))
        if any(len(values) > 1 for values in seen.values()):
            within.append(key)
    return within


def sweep_lines(groups: list[Group], key: str, within: list[str]) -> dict[str, list[Group]]:
    """The lines of a metric-against-``key`` plot: groups of one method and the same other swept values, with at
    least two values of ``key``; keyed by their label."""
    lines: dict[str, list[Group]] = {}
    for group in groups:
        other = [k for k in within if k != key]
        label = group.method + "".join(f", {short_key(k)}={format_value(group.values.get(k))}" for k in other)
        lines.setdefault(label, []).append(group)
    return {label: sorted(members, key=lambda g: sort_key(g.values.get(key))) for label, members in lines.items()
            if len({json.dumps(g.values.get(key), default=str) for g in members}) > 1}


def group_label(group: Group, within: list[str]) -> str:
    """A short name: the method and only the swept values (a method's recipe is in the Recipes table)."""
    swept = [f"{short_key(k)}={format_value(group.values.get(k))}" for k in within]
    return group.method + (f" ({', '.join(swept)})" if swept else "")


def sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order (1e-5 before 1e-1 before 10), then everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, json.dumps(value, default=str))


def is_numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
