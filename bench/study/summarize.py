"""Tabulate the recipe study: every run below bench/results/study/<stage>/, scored on the validation split, beside
the random-init and raw-pixel baselines measured the same way (bench/results/study/baseline-val/).

    python bench/study/summarize.py            # writes bench/results/study/summary.csv and summary.md

Margins are in points over the random-init Conv6; `monitor` is the online monitor's validation kNN before the first
step and at each epoch end (bank of 5,000 training images, 2,000 validation queries).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from selfsup.eval.result import Evaluation
from selfsup.train.rundir import read_metrics

ROOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "study"
PROTOCOLS = (("probe", "probe_accuracy"), ("knn", "knn_accuracy"), ("nmi", "nmi"))


def figures(evaluation: Evaluation) -> dict[str, float]:
    return {name: getattr(evaluation, attribute) for name, attribute in PROTOCOLS}


def main() -> None:
    baselines = {name: figures(Evaluation.read(ROOT / "baseline-val" / name / "eval.json"))
                 for name in ("random-init", "raw-pixels")}
    rows = []
    for stage in sorted(p for p in ROOT.iterdir() if p.is_dir() and p.name != "baseline-val"):
        for run in sorted(p for p in stage.iterdir() if (p / "eval.json").exists()):
            evaluation = Evaluation.read(run / "eval.json")
            assert evaluation.scored_on == "val", run
            metrics = read_metrics(run)
            monitor = [m["monitor_knn"] for m in metrics if "monitor_knn" in m]
            row = {"stage": stage.name, "run": run.name, **{k: round(v, 4) for k, v in figures(evaluation).items()}}
            row.update({f"{k}_margin": round(100 * (row[k] - baselines["random-init"][k]), 2) for k, _ in PROTOCOLS})
            row["train_seconds"] = evaluation.training_seconds
            row["images_seen"] = evaluation.training.get("images_seen", "")
            row["monitor"] = " ".join(f"{v:.3f}" for v in monitor)
            rows.append(row)
    for name, values in baselines.items():
        rows.append({"stage": "baseline", "run": name, **{k: round(v, 4) for k, v in values.items()}})
    columns = ["stage", "run", "probe", "knn", "nmi", "probe_margin", "knn_margin", "nmi_margin", "train_seconds",
               "images_seen", "monitor"]
    with (ROOT / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| stage | run | probe | kNN | NMI | probe +pts | kNN +pts | NMI +pts | monitor (val kNN) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        margins = [f"{r[k]:+.1f}" if k in r else "" for k in ("probe_margin", "knn_margin", "nmi_margin")]
        lines.append(f"| {r['stage']} | {r['run']} | {r['probe']:.4f} | {r['knn']:.4f} | {r['nmi']:.4f} | "
                     f"{' | '.join(margins)} | {r.get('monitor', '')} |")
    (ROOT / "summary.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
