"""The targets of `selfsup explore` (issue: "see what the encoder learned"), measured on this machine:

1. Building the page for a standard-budget run takes under 60 s on 2 cores, the projection included. The
   build reads what a standard-budget run's page reads (SimCLR + Conv6, Fashion-MNIST: 55,000 fitting and
   10,000 test images, 5,000 shown) and does not depend on how long the run trained, so the run here is trained
   briefly (5,000 images, one epoch, no evaluation). Timed: the whole `selfsup explore` process.
2. The page is under 10 MB and interactive in under 3 s in headless Chromium (Bokeh's "document idle"), for
   5,000 points; also timed: hover to the enlarged image, click to the neighbour thumbnails.

    python bench/explore.py [--against random-init]     # a few minutes on 2 cores

Raw output: bench/results/explore.json and a screenshot, explore.png (with --against: explore-random-init.*).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import chromium  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
POINT = """
const v = [...Bokeh.index.all_views()].find((x) => x.model && x.model.name === "points0");
const box = v.parent.canvas_view.el.getBoundingClientRect();
return [box.left + v.glyph.sx[arguments[0]], box.top + v.glyph.sy[arguments[0]]];
"""


def selfsup(*args: str) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-m", "selfsup.cli", *args], check=True)
    return time.perf_counter() - tic


def until(page, code: str, timeout: float = 10) -> float:  # type: ignore[no-untyped-def]
    tic = time.perf_counter()
    while not page.script(code):
        if time.perf_counter() - tic > timeout:
            raise TimeoutError(code)
        time.sleep(0.01)
    return (time.perf_counter() - tic) * 1000


def main() -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    against = ["--against", "random-init"] if "--against" in sys.argv else []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "simclr"
        selfsup("train", "simclr", "--dataset", "fashion-mnist", "--backbone", "conv6", "--limit", "5000",
                "--epochs", "1", "--quiet", "--no-eval", "--out", str(run))
        page_path = Path(tmp) / "explore.html"
        build = selfsup("explore", str(run), *against, "--quiet", "--out", str(page_path))
        result = {"command": "python bench/explore.py " + " ".join(against), "machine": platform.processor()
                  or platform.machine(), "cpus": os.cpu_count(), "points": 5000, "build_seconds": round(build, 1),
                  "bytes": page_path.stat().st_size}
        with chromium() as page:
            result["interactive_ms"] = page.open_bokeh(page_path)
            hovers, clicks = [], []
            for i in (10, 1000, 2000, 3000, 4000):
                x, y = page.script(POINT, i)
                action = ActionBuilder(page.driver)
                action.pointer_action.move_to_location(int(x), int(y))
                tic = time.perf_counter()  # from sending the move to the enlarged image drawn (an upper bound)
                action.perform()
                until(page, "return deep('.enlarged').some((e) => e.offsetParent !== null)")
                hovers.append((time.perf_counter() - tic) * 1000)
                page.script("Bokeh.documents[0].get_model_by_name('points').selected.indices = []")
                action = ActionBuilder(page.driver)
                action.pointer_action.move_to_location(int(x), int(y)).click()
                tic = time.perf_counter()
                action.perform()
                until(page, "return deep('.neighbour').length > 0")
                clicks.append((time.perf_counter() - tic) * 1000)
                action = ActionBuilder(page.driver)
                action.pointer_action.move_to_location(5, 5)
                action.perform()
                until(page, "return !deep('.enlarged').some((e) => e.offsetParent !== null)")
            x, y = page.script(POINT, 2500)  # the README's screenshot: one image pinned
            action = ActionBuilder(page.driver)
            action.pointer_action.move_to_location(int(x), int(y)).click()
            action.perform()
            until(page, "return deep('.neighbour').length > 0")
            action = ActionBuilder(page.driver)
            action.pointer_action.move_to_location(5, 5)  # the tooltip away
            action.perform()
            time.sleep(0.5)
            page.screenshot(RESULTS / ("explore-random-init.png" if against else "explore.png"))
            result["hover_ms"] = [round(h, 1) for h in hovers]
            result["click_to_neighbours_ms"] = [round(c, 1) for c in clicks]
            result["console_errors"] = page.errors()
    result["targets"] = {"build_under_60_s": result["build_seconds"] < 60, "under_10_MB": result["bytes"] < 10e6,
                         "interactive_under_3_s": result["interactive_ms"] < 3000}
    name = "explore-random-init.json" if against else "explore.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
