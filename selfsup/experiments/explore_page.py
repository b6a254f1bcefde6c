"""The page of `selfsup explore`: one self-contained HTML file (Bokeh, its JavaScript inlined), offline.

Bokeh draws the maps and the confusion matrices and does the interaction: hover tooltips (the image enlarged,
label, file, kNN prediction, reconstruction), tap to pin, linked selection (every map draws from one
ColumnDataSource, so selecting a point in one selects it in all), a view filter for the classes shown. Small
CustomJS callbacks fill the neighbour panel (HTML thumbnails) and swap colour columns. Why Bokeh and not Plotly:
measured in bench/explore_libraries.py (README "Explore what the encoder learned").
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.experiments.explore import Exploration
from selfsup.experiments.sprites import Sprites
from selfsup.train.checkpoint import write_atomic

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
CORRECT, WRONG = "#2ca02c", "#d62728"


def colours(values: np.ndarray) -> list[str]:
    return [PALETTE[int(v) % len(PALETTE)] for v in values]


MAX_BYTES = 10_000_000
BANK_QUALITIES = (90, 80, 70, 60, 50, 40, 30)


SIZE = 112  # px: the enlarged image on hover
TILE_CSS = (f"width:{SIZE}px;height:{SIZE}px;background-size:{Sprites.COLUMNS * SIZE}px auto;"
            "image-rendering:pixelated")


def write_page(exploration: Exploration, out: str | Path, title: str = "selfsup explore",
               max_bytes: int = MAX_BYTES) -> Path:
    """The page of ``exploration``, written to ``out`` atomically. The shown images (and reconstructions) are
    lossless; the neighbours' thumbnails are WebP at the best quality that keeps the page within ``max_bytes``
    (lossless when that fits)."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import BooleanFilter, CDSView, ColumnDataSource, Div
    from bokeh.resources import INLINE

    e = exploration
    sprites = Sprites()
    points = ColumnDataSource(point_columns(e, sprites), name="points")
    view = CDSView(filter=BooleanFilter([True] * len(e.labels)))
    bank_ids = sorted(e.bank_images)
    neighbours = neighbour_arrays(e, bank_ids, first_sheet=len(sprites.sheets))
    base_css = len(sprites.css())
    maps = [map_figure(e, i, points, view) for i in range(len(e.representations))]
    controls = colour_and_filter(e, points, view)
    panel = neighbour_panel(e, points, neighbours)
    matrices = [confusion_figure(e, i, points) for i in range(len(e.representations))]
    quality_note = Div(text="", name="quality")
    layout = column(header(e, title), quality_note, *controls, row(*maps), panel, row(*matrices))

    quality = None
    if bank_ids:  # lossless when it fits, else the best quality that does (estimated on one sheet)
        bank_images = np.stack([e.bank_images[i] for i in bank_ids])
        quality_note.text = note_for(None, len(bank_ids))
        room = max_bytes - len(file_html(layout, INLINE, title)) - base_css
        sample = bank_images[: Sprites.COLUMNS * Sprites.ROWS]
        for quality in (None, *BANK_QUALITIES):
            trial = Sprites()
            trial.add(sample, quality)
            if trial.bytes() * len(bank_ids) / len(sample) <= room:
                break
        sprites.add(bank_images, quality)
    quality_note.text = note_for(quality, len(bank_ids))
    page = file_html(layout, INLINE, title)
    head = page.index("<head>") + len("<head>")  # the document's own head comes first (Bokeh's JS holds more)
    page = page[:head] + f"<style>{sprites.css()}</style>" + page[head:]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page)
    return out


def point_columns(e: Exploration, sprites: Sprites) -> dict[str, Any]:
    """The shown images' columns: label, file, sprite tile (and reconstruction's), and per representation its
    map position, kNN prediction and colours."""
    names = e.classes

    def place(refs: list[tuple[int, int, int]]) -> tuple[list[str], list[str]]:
        return [str(r[0]) for r in refs], [f"-{r[1] * SIZE}px -{r[2] * SIZE}px" for r in refs]

    data: dict[str, Any] = {
        "label": [names[int(v)] for v in e.labels], "label_id": e.labels.astype(np.int32),
        "index": e.index.astype(np.int32), "file": e.files if e.files is not None else [""] * len(e.labels),
        "class_colour": colours(e.labels),
    }
    data["sheet"], data["pos"] = place(sprites.add(e.images))
    for i, rep in enumerate(e.representations):
        correct = rep.predicted == e.labels
        data[f"x{i}"], data[f"y{i}"] = rep.xy[:, 0].astype(np.float32), rep.xy[:, 1].astype(np.float32)
        data[f"pred{i}"] = [names[int(v)] for v in rep.predicted]
        data[f"verdict{i}"] = ["right" if c else "wrong" for c in correct]
        data[f"cluster_colour{i}"] = colours(rep.clusters)
        data[f"correct_colour{i}"] = [CORRECT if c else WRONG for c in correct]
        data[f"colour{i}"] = list(data["class_colour"])
        if e.reconstructions[i] is not None:
            data[f"recon_sheet{i}"], data[f"recon_pos{i}"] = place(sprites.add(e.reconstructions[i]))
    return data


def neighbour_arrays(e: Exploration, bank_ids: list[int], first_sheet: int) -> dict[str, Any]:
    """What the neighbour panel reads (typed arrays in the page): bank image j (by bank position) is tile j of
    the sheets from ``first_sheet`` on."""
    position = {bank_id: j for j, bank_id in enumerate(bank_ids)}
    reps = e.representations
    return {"first_sheet": first_sheet, "labels": [rep.label for rep in reps],
            "bank_label": np.array([e.bank_labels[i] for i in bank_ids], dtype=np.int32),
            "k": int(reps[0].neighbours.shape[1]) if reps else 0,
            "ids": [np.vectorize(position.__getitem__, otypes=[np.int32])(rep.neighbours).reshape(-1)
                    for rep in reps],
            "sims": [rep.similarity.astype(np.float32).reshape(-1) for rep in reps]}


def map_figure(e: Exploration, i: int, points: Any, view: Any) -> Any:
    """Representation ``i``'s map: hover for the image, a click pins one image (the selection is shared)."""
    from bokeh.models import CustomJS, HoverTool, TapTool
    from bokeh.plotting import figure

    rep = e.representations[i]
    plot = figure(title=f"{rep.label}: kNN {rep.accuracy:.4f} on all {rep.scored:,} {e.split} images",
                  width=560, height=520, tools="pan,wheel_zoom,box_select,reset,save", active_scroll="wheel_zoom",
                  name=f"map{i}")  # canvas: faster than WebGL in software (bench/explore_libraries.py)
    plot.axis.visible = False
    plot.grid.visible = False
    glyph = plot.scatter(f"x{i}", f"y{i}", source=points, view=view, size=6, fill_color=f"colour{i}",
                         line_color=None, fill_alpha=0.8, nonselection_fill_alpha=0.15,
                         selection_line_color="black", name=f"points{i}")
    recon = (f'<div>reconstruction</div><div style="{TILE_CSS};background-image:var(--s@recon_sheet{i});'
             f'background-position:@recon_pos{i}"></div>' if e.reconstructions[i] is not None else "")
    plot.add_tools(HoverTool(renderers=[glyph], limit=1, tooltips=(  # one image at a time
        f'<div class="tip"><div class="enlarged" style="{TILE_CSS};background-image:var(--s@sheet);'
        f'background-position:@pos"></div>{recon}<div><b>@label</b> &middot; kNN: @pred{i} (@verdict{i})</div>'
        '<div>@file</div></div>')))
    # a click selects every point under the cursor: pin the first of them
    pin = CustomJS(args={"points": points}, code="""
        const chosen = points.selected.indices;
        if (chosen.length > 1) { points.selected.indices = [chosen[0]]; }
    """)
    plot.add_tools(TapTool(renderers=[glyph], callback=pin))
    return plot


def colour_and_filter(e: Exploration, points: Any, view: Any) -> list[Any]:
    """The colour menu (class, k-means cluster, kNN right or wrong) and the class check boxes."""
    from bokeh.layouts import row
    from bokeh.models import CheckboxGroup, CustomJS, Select

    colour_by = Select(title="colour by", value="class", options=["class", "k-means cluster", "kNN right or wrong"],
                       name="colour_by")
    colour_by.js_on_change("value", CustomJS(args={"points": points, "count": len(e.representations)}, code="""
        const d = points.data;
        const key = {"class": "class_colour", "k-means cluster": "cluster_colour",
                     "kNN right or wrong": "correct_colour"}[cb_obj.value];
        for (let i = 0; i < count; i++) {
            d["colour" + i] = key === "class_colour" ? d.class_colour.slice() : d[key + i].slice();
        }
        points.change.emit();
    """))
    present = sorted({int(v) for v in e.labels})
    class_filter = CheckboxGroup(labels=[e.classes[v] for v in present], active=list(range(len(present))),
                                 inline=True, name="class_filter")
    class_filter.js_on_change("active", CustomJS(args={"points": points, "view": view, "present": present}, code="""
        const shown = new Set(cb_obj.active.map((a) => present[a]));
        view.filter.booleans = Array.from(points.data.label_id, (l) => shown.has(l));
        points.change.emit();
    """))
    return [row(colour_by), class_filter]


def neighbour_panel(e: Exploration, points: Any, neighbours: dict[str, Any]) -> Any:
    """The panel a selection fills: one pinned image and its neighbours, or the list of selected images."""
    from bokeh.models import CustomJS, Div

    panel = Div(text="<i>Click a point to pin it and see its nearest neighbours; click a cell of a confusion "
                     "matrix to list its images.</i>", width=1120, name="panel")
    # numpy arrays travel as typed arrays (base64 in the page)
    show_selection = CustomJS(args={"points": points, "panel": panel, "classes": e.classes,
                                    "columns": Sprites.COLUMNS, "per_sheet": Sprites.COLUMNS * Sprites.ROWS,
                                    **neighbours}, code=PANEL_JS)
    points.selected.js_on_change("indices", show_selection)
    return panel


def header(e: Exploration, title: str) -> Any:
    from bokeh.models import Div

    reps = e.representations
    accuracy = " · ".join(f"{rep.label}: kNN accuracy {rep.accuracy:.4f} over all {rep.scored:,} {e.split} images"
                          for rep in reps)
    notes = "".join(f"<div>{html.escape(rep.note)}</div>" for rep in reps if rep.note)
    return Div(text=(f"<h2>{html.escape(title)}</h2><div>{len(e.labels):,} of the {e.split} images shown "
                     f"({html.escape(str(e.data.get('dataset')))} from {html.escape(str(e.data.get('source')))}); "
                     f"map: {e.projection} of the features the evaluation uses (projected to "
                     f"{e.knn['dim']} dimensions); neighbours and kNN predictions: the evaluation's ({e.knn['k']}"
                     f"-NN vote, temperature {e.knn['temperature']}) with the fitting split as the bank.</div>"
                     f"<div>{html.escape(accuracy)}</div>{notes}"), width=1120)


def note_for(quality: int | None, bank: int) -> str:
    text = "lossless" if quality is None else f"WebP quality {quality}, to keep the page under 10 MB"
    return (f"<small>Shown images: lossless. The {bank:,} neighbour thumbnails from the fitting split: {text}."
            "</small>")


def confusion_figure(e: Exploration, i: int, points: Any) -> Any:
    """The kNN confusion matrix of the shown images under representation ``i``; a tap selects a cell's images."""
    from bokeh.models import ColumnDataSource, CustomJS, HoverTool, TapTool
    from bokeh.plotting import figure

    rep = e.representations[i]
    names = e.classes
    present = sorted({int(v) for v in e.labels} | {int(v) for v in rep.predicted})
    cells: dict[str, list[Any]] = {"true": [], "predicted": [], "count": [], "members": [], "shade": [], "text": []}
    total = np.bincount(e.labels, minlength=len(names))
    for t in present:
        for p in present:
            members = np.nonzero((e.labels == t) & (rep.predicted == p))[0]
            cells["true"].append(names[t])
            cells["predicted"].append(names[p])
            cells["count"].append(int(members.size))
            cells["members"].append(json.dumps(members.tolist()))
            share = members.size / max(int(total[t]), 1)
            level = int(255 - 200 * share)
            cells["shade"].append(f"rgb({level},{level},255)" if t == p else f"rgb(255,{level},{level})")
            cells["text"].append(str(members.size) if members.size else "")
    source = ColumnDataSource(cells, name=f"confusion{i}")
    labels = [names[v] for v in present]
    plot = figure(title=f"kNN confusion, {rep.label} ({len(e.labels):,} shown images)", x_range=labels,
                  y_range=list(reversed(labels)), width=560, height=480, tools="", toolbar_location=None,
                  name=f"confusion_plot{i}", x_axis_label="kNN prediction", y_axis_label="label")
    cells_glyph = plot.rect("predicted", "true", 1, 1, source=source, fill_color="shade", line_color="white")
    plot.text("predicted", "true", text="text", source=source, text_align="center", text_baseline="middle",
              text_font_size="9pt")
    plot.xaxis.major_label_orientation = 0.8
    plot.add_tools(TapTool(renderers=[cells_glyph]), HoverTool(renderers=[cells_glyph],
                                                               tooltips="@true as @predicted: @count"))
    source.selected.js_on_change("indices", CustomJS(args={"points": points, "cells": source}, code="""
        const chosen = cells.selected.indices;
        if (chosen.length === 0) { return; }
        points.selected.indices = JSON.parse(cells.data.members[chosen[0]]);
    """))
    return plot


PANEL_JS = """
const chosen = points.selected.indices;
const d = points.data;
const tile = (sheet, c, r, size, border, title, cls) =>
    `<span class="${cls}" title="${title}" style="display:inline-block;margin:2px;border:3px solid ${border};` +
    `width:${size}px;height:${size}px;background-image:var(--s${sheet});background-size:${columns * size}px auto;` +
    `background-position:-${c * size}px -${r * size}px;image-rendering:pixelated"></span>`;
const own = (p, size, border, title, cls) => {
    const [x, y] = d.pos[p].split(" ").map((v) => -parseInt(v) / 112);
    return tile(d.sheet[p], x, y, size, border, title, cls);
};
if (chosen.length === 0) {
    panel.text = "<i>Click a point to pin it and see its nearest neighbours.</i>";
} else if (chosen.length === 1) {
    const p = chosen[0];
    let text = `<div class="pinned">${own(p, 84, "black", d.label[p], "pinned-image")} <b>${d.label[p]}</b> ` +
        `${d.file[p]} (image ${d.index[p]} of the split)</div>`;
    labels.forEach((name, i) => {
        text += `<div class="neighbours" data-representation="${name}"><b>${name}</b>: nearest in the ` +
            `fitting split (green: same class, red: other)<br>`;
        for (let j = 0; j < k; j++) {
            const b = ids[i][p * k + j];
            const label = classes[bank_label[b]];
            const same = label === d.label[p];
            const slot = b % per_sheet;
            text += tile(first_sheet + Math.floor(b / per_sheet), slot % columns, Math.floor(slot / columns), 56,
                         same ? "#2ca02c" : "#d62728", `${label} (cosine ${sims[i][p * k + j].toFixed(3)})`,
                         `neighbour ${same ? "same" : "other"}`);
        }
        text += `</div>`;
    });
    panel.text = text;
} else {
    let text = `<div><b>${chosen.length} images selected</b>` +
        (chosen.length > 200 ? " (the first 200 shown)" : "") + `</div><div class="selection">`;
    for (const p of chosen.slice(0, 200)) {
        text += own(p, 42, "#ccc", `${d.label[p]}, kNN ${d.pred0[p]}`, "listed");
    }
    panel.text = text + `</div>`;
}
"""
