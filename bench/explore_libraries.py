"""Which plotting library `selfsup explore` is built on, chosen by measurement: the same 5,000 Fashion-MNIST test
images (PNG thumbnails, a 2-d PCA map of their pixels) written as one self-contained page by Bokeh (canvas and
WebGL output) and by Plotly (scattergl, plotly.js inlined), then opened in headless Chromium on this machine.

Measured per page: its size; the time to interactive (navigation start to Bokeh's "document idle", or to the end of
Plotly's first draw: its post_script); and the time of one class-filter update (data changed, then two animation frames
drawn), the median of 5. Also recorded: whether the library's own hover tooltip can show the image (Bokeh's
takes an HTML template; Plotly's hovertemplate drops <img>, so the image needs hand-written event code).

    python bench/explore_libraries.py        # about a minute

Raw output: bench/results/explore-libraries.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import chromium  # noqa: E402

from selfsup.data.splits import labelled_splits  # noqa: E402
from selfsup.experiments.explore_page import PALETTE  # noqa: E402
from selfsup.experiments.sprites import thumbnail  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "explore-libraries.json"
N = 5000


def sample() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    splits = labelled_splits("fashion-mnist", None, False, None, 0, with_test=True)
    test = splits.test
    images = test.images[:N].numpy()
    flat = images.reshape(N, -1).astype(np.float32) / 255
    flat -= flat.mean(0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    return flat @ vt[:2].T, test.labels[:N].numpy(), [thumbnail(image) for image in images], list(test.classes)


def bokeh_page(xy: np.ndarray, labels: np.ndarray, thumbs: list[str], backend: str, path: Path) -> Path:
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import BooleanFilter, CDSView, ColumnDataSource, HoverTool
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    source = ColumnDataSource({"x": xy[:, 0], "y": xy[:, 1], "label": labels.astype(np.int32), "thumb": thumbs,
                               "colour": [PALETTE[v] for v in labels]}, name="points")
    view = CDSView(filter=BooleanFilter([True] * len(labels)), name="view")
    plot = figure(width=700, height=650, output_backend=backend, tools="pan,wheel_zoom,reset,tap")
    glyph = plot.scatter("x", "y", source=source, view=view, fill_color="colour", line_color=None, size=6)
    plot.add_tools(HoverTool(renderers=[glyph], tooltips='<img src="@thumb" width="112" height="112">'))
    path.write_text(file_html(column(plot), INLINE, "bokeh"))
    return path


def plotly_page(xy: np.ndarray, labels: np.ndarray, thumbs: list[str], path: Path) -> Path:
    import plotly.graph_objects as go

    figure = go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=thumbs,
                                    marker={"color": [PALETTE[v] for v in labels], "size": 6},
                                    hovertemplate='<img src="%{customdata}">'))
    figure.update_layout(width=700, height=650)
    ready = "window.readyAt = performance.now();"  # plotly runs post_script once newPlot has drawn the figure
    path.write_text(figure.to_html(include_plotlyjs=True, full_html=True, post_script=ready, div_id="plot"))
    return path


BOKEH_FILTER = """
const done = arguments[arguments.length - 1];
const doc = Bokeh.documents[0];
const source = doc.get_model_by_name("points");
const view = doc.get_model_by_name("view") || [...doc.all_models].find((m) => m.type === "CDSView");
const keep = arguments[0];
const t = performance.now();
view.filter.booleans = Array.from(source.data.label, (l) => l !== keep);
source.change.emit();
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));
"""
PLOTLY_FILTER = """
const done = arguments[arguments.length - 1];
const gd = document.getElementById("plot");
const keep = arguments[0];
const colours = gd.data[0].marker.color.map((c, i) => i % 10 === keep ? "rgba(0,0,0,0)" : c);
const t = performance.now();
Plotly.restyle(gd, {"marker.color": [colours]}).then(() =>
    requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t))));
"""


def measure(page_path: Path, kind: str) -> dict:
    with chromium() as page:
        if kind == "plotly":
            page.driver.get(page_path.resolve().as_uri())
            end = time.monotonic() + 60
            ready = None
            while ready is None and time.monotonic() < end:
                ready = page.driver.execute_script("return window.readyAt || null")
                time.sleep(0.05)
            code = PLOTLY_FILTER
        else:
            ready = page.open_bokeh(page_path)
            code = BOKEH_FILTER
        filters = [page.driver.execute_async_script(code, keep) for keep in (0, 1, 2, 3, 4)]
        errors = page.errors()
    return {"bytes": page_path.stat().st_size, "interactive_ms": round(ready, 1),
            "filter_ms_median": round(statistics.median(filters), 1), "filter_ms": [round(f, 1) for f in filters],
            "console_errors": errors}


def main() -> None:
    import bokeh
    import plotly

    xy, labels, thumbs, classes = sample()
    results = {"command": "python bench/explore_libraries.py", "points": N,
               "versions": {"bokeh": bokeh.__version__, "plotly": plotly.__version__},
               "image_in_library_tooltip": {"bokeh": True, "plotly": False}, "pages": {}}
    with tempfile.TemporaryDirectory() as tmp:
        pages = {"bokeh-canvas": bokeh_page(xy, labels, thumbs, "canvas", Path(tmp) / "canvas.html"),
                 "bokeh-webgl": bokeh_page(xy, labels, thumbs, "webgl", Path(tmp) / "webgl.html"),
                 "plotly-scattergl": plotly_page(xy, labels, thumbs, Path(tmp) / "plotly.html")}
        for name, path in pages.items():
            results["pages"][name] = measure(path, "plotly" if name.startswith("plotly") else "bokeh")
            print(name, json.dumps(results["pages"][name]), flush=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
