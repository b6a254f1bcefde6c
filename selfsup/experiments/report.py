"""Reports over a folder of run directories (a sweep, or any runs): ``results.csv``, ``report.md``,
a self-contained ``report.html`` and ``plots/*.png``.

One row per run: its method, the keys that vary between the runs, every metric and the time.
Runs that differ only in ``train.seed`` are grouped into mean and standard deviation. The records come from
``experiments.records``, the figures from ``experiments.figures``; this module renders them.
"""

from __future__ import annotations

import base64
import csv
import html
import logging
from pathlib import Path

from selfsup.errors import ReportError, RunDirectoryError
from selfsup.experiments.figures import (
    plot_accuracy_against_time,
    plot_embedding_maps,
    plot_metric_against,
    plot_ranking,
    plot_training_curves,
)
from selfsup.experiments.records import (
    PLOTTED,
    SEED_KEY,
    Group,
    RunRecord,
    find_runs,
    format_value,
    group_label,
    group_runs,
    is_numeric,
    metric_columns,
    read_run,
    reference_records,
    short_key,
    sort_key,
    sweep_lines,
    varied_keys,
    within_method_keys,
)

log = logging.getLogger(__name__)
EXPLORE_FILE = "explore.html"


class Link(str):
    """A table cell that links to ``href`` (relative to the report) in report.html and report.md."""

    href: str

    def __new__(cls, text: str, href: str) -> Link:
        cell = super().__new__(cls, text)
        cell.href = href
        return cell

def _cell(stats: tuple[float, float, int] | None) -> str:
    if stats is None:
        return ""
    mean, std, n = stats
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def build_report(folder: str | Path, embedding: str | None = "tsne", map_points: int = 1000,
                 baselines: bool = True, explore: bool = False) -> dict[str, Path]:
    """Write results.csv, report.md, report.html and plots/ into ``folder``; returns their paths. With
    ``baselines`` every table and metric plot also shows the raw-pixel and random-init levels of the runs' dataset
    and encoder (measured once, cached). With ``explore``, each finished run with a checkpoint gets its
    `selfsup explore` page (RUN/explore.html, built unless it is newer than the checkpoint); the runs table
    links every run's page that exists."""
    folder = Path(folder)
    records = _read_records(folder)
    if explore:
        _explore_pages(records)
    keys = varied_keys(records, folder)
    records.sort(key=lambda r: (r.method, *(sort_key(r.config.get(k)) for k in keys)))
    references = reference_records(records) if baselines else []
    columns = metric_columns(records)
    outputs = {"csv": _write_csv(folder / "results.csv", records + references, keys, columns)}
    groups = group_runs([r for r in records if r.metrics], keys)
    levels = {r.name: r.metrics for r in references}
    plots = _figures(folder / "plots", records, groups, keys, embedding, map_points, levels)
    tables = _tables(records + references, groups, keys, columns)
    title = f"selfsup report: {folder.name}"
    summary = (f"{len(records)} runs ({sum(r.status == 'done' for r in records)} done, "
               f"{sum(r.status == 'failed' for r in records)} failed); varied: {', '.join(keys) or 'nothing'}; "
               f"scored on: {', '.join(sorted({r.split for r in records if r.split})) or 'nothing yet'} "
               "(val: the validation split held out of train, for choices; test: final figures)")
    outputs["md"] = write_markdown(folder / "report.md", title, summary, tables, plots)
    outputs["html"] = write_html(folder / "report.html", title, summary, tables, plots)
    outputs.update({label: path for label, path in plots})
    return outputs


def _read_records(folder: Path) -> list[RunRecord]:
    run_dirs = find_runs(folder)
    if not run_dirs:
        raise ReportError(f"{folder} holds no runs (no run directory with a config.yaml below it)")
    records = []
    for run_dir in run_dirs:
        try:
            records.append(read_run(run_dir, folder))
        except RunDirectoryError as error:  # an unreadable config.yaml: the other runs are still reported
            log.warning("left out of the report: %s", error)
            continue
    if not records:
        raise ReportError(f"{folder} holds no readable runs")
    return records


def _write_csv(path: Path, records: list[RunRecord], keys: list[str], columns: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "method", "status", "split", *keys, *columns, "training_seconds", "data", "error"])
        for r in records:
            writer.writerow([r.name, r.method, r.status, r.split, *(format_value(r.config.get(k)) for k in keys),
                             *(r.metrics.get(c, "") for c in columns), "" if r.seconds is None else r.seconds,
                             r.data, r.error or ""])
    return path


def _figures(plots_dir: Path, records: list[RunRecord], groups: list[Group], keys: list[str], embedding: str | None,
             map_points: int, levels: dict[str, dict[str, float]]) -> list[tuple[str, Path]]:
    """Figures that fit what was varied: a key swept within a method gets metric-against-key plots; several
    configurations get one sorted bar chart per metric. Keys that differ only between methods (their recipes)
    get no plot of their own."""
    plots: list[tuple[str, Path]] = []
    within = within_method_keys(groups, keys)
    for key in within:
        lines = sweep_lines(groups, key, within)
        values = [g.values[key] for members in lines.values() for g in members]
        if lines and is_numeric(values):
            plots.append((f"metrics against {short_key(key)}", plot_metric_against(
                lines, key, plots_dir / f"metric-vs-{short_key(key)}.png", levels)))
    if len(groups) > 1:
        labels = [group_label(g, within) for g in groups]
        for column in PLOTTED:
            plots.append((f"{column.replace('_', ' ')}, best first", plot_ranking(
                groups, labels, column, plots_dir / f"ranking-{column}.png", levels)))
    curves = plot_training_curves(records, plots_dir / "training-curves.png")
    if curves:
        plots.append(("training curves", curves))
    over_time = plot_accuracy_against_time(records, plots_dir / "accuracy-vs-time.png")
    if over_time:
        plots.append(("validation kNN against training time", over_time))
    if embedding:
        maps = plot_embedding_maps(records, plots_dir / f"embedding-{embedding}.png", embedding, map_points)
        if maps:
            plots.append((f"{embedding} maps", maps))
    return plots


def _tables(records: list[RunRecord], groups: list[Group], keys: list[str], columns: list[str]
            ) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The seed groups' table (only when some group has several seeds), the runs' table (with the swept keys
    only), the recipes (keys that differ only between methods, one row per method) and the data sources."""
    tables = {}
    within = within_method_keys(groups, keys)
    recipe_keys = [k for k in keys if k not in within and k != SEED_KEY]
    if any(len(g.runs) > 1 for g in groups):
        header = ["configuration", "runs", *columns]
        rows = [[group_label(g, within), str(len(g.runs)), *(_cell(g.stats(c)) for c in columns)] for g in groups]
        tables["Mean ± standard deviation over seeds"] = (header, rows)
    shown = [k for k in keys if k in within or k == SEED_KEY]
    header = ["run", "method", "status", "split", *(short_key(k) for k in shown), *columns, "training s"]
    rows = [[r.name, r.method, r.status + (f" ({r.error})" if r.error else ""), r.split,
             *(format_value(r.config.get(k)) for k in shown),
             *(f"{r.metrics[c]:.4f}" if c in r.metrics else "" for c in columns),
             "" if r.seconds is None else f"{r.seconds:.0f}"] for r in records]
    pages = [_explore_link(r) for r in records]
    if any(pages):
        header.append("explore")
        rows = [row + [page] for row, page in zip(rows, pages)]
    tables["Runs"] = (header, rows)
    if recipe_keys:  # what differs between methods only: each method's recipe, once
        recipes: dict[str, list[str]] = {}
        for r in records:
            if r.status != "reference":
                recipes.setdefault(r.method, [format_value(r.config.get(k)) for k in recipe_keys])
        tables["Recipes (keys that differ only between methods)"] = (
            ["method", *(short_key(k) for k in recipe_keys)], [[m, *v] for m, v in recipes.items()])
    sources: dict[str, list[str]] = {}
    for r in records:
        if r.data:
            sources.setdefault(r.data, []).append(r.name)
    if sources:  # where each run's images came from: a run on other data than its neighbours shows here
        tables["Data"] = (["data source (folder, training images, content fingerprint)", "runs"],
                          [[source, ", ".join(names)] for source, names in sources.items()])
    return tables


def _explore_link(record: RunRecord) -> str:
    page = record.path / EXPLORE_FILE
    if record.status == "reference" or not page.exists():
        return ""
    return Link("explore", f"{record.name}/{EXPLORE_FILE}")


def _explore_pages(records: list[RunRecord]) -> None:
    """Build RUN/explore.html for each finished run with a checkpoint, unless it is newer than the checkpoint."""
    from selfsup.experiments.explore import explore
    from selfsup.experiments.explore_page import write_page

    for record in records:
        checkpoint = record.path / "checkpoints" / "last.pt"
        page = record.path / EXPLORE_FILE
        if record.status != "done" or not checkpoint.exists():
            continue
        if page.exists() and page.stat().st_mtime >= checkpoint.stat().st_mtime:
            continue
        log.info("explore page of %s", record.name)
        write_page(explore([record.path], split=record.split or "test", progress=False), page,
                   f"selfsup explore: {record.name}")


def write_markdown(path: Path, title: str, summary: str, tables: dict, plots: list[tuple[str, Path]]) -> Path:  # type: ignore[type-arg]
    md = [f"# {title}", "", summary, ""]
    for heading, (header, rows) in tables.items():
        md += [f"## {heading}", "", *_md_table(header, rows), ""]
    md += ["## Plots", ""] + [f"![{label}](plots/{plot.name})" for label, plot in plots]
    path.write_text("\n".join(md) + "\n")
    return path


def write_html(path: Path, title: str, summary: str, tables: dict, plots: list[tuple[str, Path]]) -> Path:  # type: ignore[type-arg]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(summary)}</p>"]
    for heading, (header, rows) in tables.items():
        body += [f"<h2>{html.escape(heading)}</h2>", _html_table(header, rows)]
    body.append("<h2>Plots</h2>")
    for label, plot in plots:
        data = base64.b64encode(plot.read_bytes()).decode()
        body.append(f"<figure><img alt='{html.escape(label)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(label)}</figcaption></figure>")
    path.write_text(HTML_PAGE.format(title=html.escape(title), body="\n".join(body)))
    return path


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(value: str) -> str:
        text = value.replace("|", "/")
        return f"[{text}]({value.href})" if isinstance(value, Link) else text

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell(value) for value in row) + " |" for row in rows]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    def cell(value: str) -> str:
        if isinstance(value, Link):
            return f"<td><a href='{html.escape(value.href)}'>{html.escape(value)}</a></td>"
        return f"<td>{html.escape(value)}</td>"

    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
.wide {{ max-width: 100%; overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 13px; }}
th {{ background: #1f4e79; color: #fff; padding: 5px 7px; text-align: left; }}
td {{ border-bottom: 1px solid #ccc; padding: 4px 7px; white-space: nowrap; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
figure {{ margin: 1.5em 0; }}
</style></head>
<body>
{body}
</body></html>
"""
