"""The same trained run evaluated with features extracted in fp32 NCHW and in the inference mode `auto` measured
fastest here: the figures must agree within run-to-run noise; the extraction time is what changes.

    python bench/eval_inference.py [RUN]     # default bench/results/runs/simclr-full-x4; a copy is evaluated
writes bench/results/eval-inference-<run>.json
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfsup.api import evaluate_run
from selfsup.train.device import device_name

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench/results/runs/simclr-full-x4"
    results = {"run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
               "machine": device_name(torch.device("cpu")), "torch": torch.__version__,
               "command": "python bench/eval_inference.py", "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.png"))
        for setting in ("fp32", "auto", "fp32", "auto"):  # twice each, alternating: the time's spread
            tic = time.perf_counter()
            evaluation, _ = evaluate_run(copy, {"eval.precision": setting})
            total = time.perf_counter() - tic
            row = {"linear_probe": evaluation.probe_accuracy, "knn": evaluation.knn_accuracy, "kmeans_nmi": evaluation.nmi,
                   "extraction": f"{evaluation.features['extraction_precision']} {evaluation.features.get('extraction_format')}",
                   "seconds": evaluation.seconds, "evaluation_seconds": round(total, 1)}
            results.setdefault(setting, []).append(row)
            print(setting, json.dumps(row), flush=True)
    out = ROOT / "bench/results" / f"eval-inference-{run.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
