"""What to expect: validation kNN against training time and images seen, for the runs of `selfsup bench accuracy`
(their online monitor), beside the random-init and raw-pixel levels on the same images.

    python bench/expect.py [RUN_DIR ...]     # default: every run below bench/results/runs with a monitor

Writes bench/results/expect.csv (one row per measurement) and bench/results/expect.png. Times are this machine's
training seconds (the monitor's own time left out); images seen transfer to other machines: divide by their
throughput (README "What to expect").
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def monitor_points(run: Path) -> tuple[list[dict], dict | None]:
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return [m for m in metrics if "monitor_knn" in m], next((m for m in metrics if "monitor_raw_pixels_knn" in m), None)


def main(runs: list[Path]) -> None:
    runs = runs or sorted(p.parent for p in (RESULTS / "runs").glob("*/metrics.jsonl"))
    rows, curves, levels = [], {}, None
    for run in runs:
        points, run_levels = monitor_points(run)
        if not points:
            continue
        levels = levels or run_levels
        curves[run.name] = points
        rows += [{"run": run.name, "step": p["step"], "images_seen": p["images_seen"],
                  "train_seconds": p["train_seconds"], "val_knn": p["monitor_knn"]} for p in points]
    with (RESULTS / "expect.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["run", "step", "images_seen", "train_seconds", "val_knn"])
        writer.writeheader()
        writer.writerows(rows)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    for name, points in curves.items():
        for axis, key, scale in ((axes[0], "train_seconds", 60.0), (axes[1], "images_seen", 1e6)):
            axis.plot([p[key] / scale for p in points], [p["monitor_knn"] for p in points], "o-", markersize=3,
                      label=name)
    random_init = next(iter(curves.values()))[0]["monitor_knn"] if curves else None
    for axis, label in ((axes[0], "training minutes (this machine)"), (axes[1], "million images seen")):
        if random_init is not None:
            axis.axhline(random_init, color="tab:red", linestyle="--", label=f"random-init Conv6 {random_init:.3f}")
        if levels is not None:
            raw = levels["monitor_raw_pixels_knn"]
            axis.axhline(raw, color="tab:gray", linestyle=":", label=f"raw pixels {raw:.3f}")
        axis.set_xlabel(label)
        axis.set_ylabel("kNN accuracy, validation split")
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    figure.suptitle("Online monitor: validation kNN (bank 5,000 training images, 2,000 validation queries)")
    figure.tight_layout()
    figure.savefig(RESULTS / "expect.png")
    print(f"{len(rows)} measurements of {len(curves)} runs -> {RESULTS / 'expect.csv'}, {RESULTS / 'expect.png'}")


if __name__ == "__main__":
    main([Path(arg) for arg in sys.argv[1:]])
