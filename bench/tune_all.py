"""`selfsup tune` for every method on Fashion-MNIST (issue: "every method earns its place"), at a proxy budget.

Each study: the method's search space (selfsup/space.py and the method's ``search_space``) around its current
recipe, whose values are the first trial; at most TRIALS trials or BUDGET of search per method, whichever ends
first. A trial trains on 10,000 of the 55,000 training images for one epoch (the proxy that matched the hand-made
SimCLR study, bench/tune_targets.py) and is scored by the online monitor's kNN on 1,000 validation images with a
2,000-image bank; the test split is never read.

    python bench/tune_all.py [METHOD ...]        # about 5 minutes per method on 2 cores in fp32

Raw outputs: bench/results/tune-all/METHOD/ (study.db, tune.json, trials.csv, recipe.yaml, report.md) and
bench/results/tune-all/summary.json (per method: the starting recipe's and the best trial's validation kNN).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "tune-all"
PROXY = ["--dataset", "fashion-mnist", "--limit", "10000", "--epochs", "1", "--quiet", "--precision", "fp32",
         "--set", "monitor.bank=2000", "--set", "monitor.queries=1000"]
TRIALS, BUDGET = "10", "5m"
METHODS = ("byol", "simsiam", "directpred", "directcopy", "barlow-twins", "rotnet", "ae", "dae", "vae", "cae",
           "parallel-ae", "parallel-dae", "layerwise", "autodecoder", "rae")
BACKBONE = {"rae": "mlp"}  # rae's layer-wise scheme needs an MLP; every other method trains Conv6
KEEP = ("study.db", "tune.json", "trials.csv", "recipe.yaml", "report.md")


def main() -> None:
    methods = sys.argv[1:] or list(METHODS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {
        "command": "python bench/tune_all.py", "proxy": "10,000 images x 1 epoch per trial; monitor kNN on 1,000 "
        "validation images", "trials": int(TRIALS), "budget_per_method": BUDGET, "methods": {}}
    for method in methods:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / method
            tic = time.perf_counter()
            command = ["tune", method, *PROXY, "--backbone", BACKBONE.get(method, "conv6"), "--trials", TRIALS,
                       "--budget", BUDGET, "--out", str(out)]
            done = subprocess.run([sys.executable, "-m", "selfsup.cli", *command], capture_output=True, text=True)
            record: dict = {"command": "selfsup " + " ".join(command[:-1]) + f" --out {method}",
                            "exit": done.returncode, "wall_seconds": round(time.perf_counter() - tic, 1)}
            if done.returncode != 0:
                record["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:400]
            if (out / "tune.json").exists():
                subprocess.run([sys.executable, "-m", "selfsup.cli", "report", str(out)], capture_output=True)
                tune = json.loads((out / "tune.json").read_text())
                record.update({key: tune.get(key) for key in ("start_val_knn", "best_val_knn", "best_trial",
                                                              "best_params", "trials", "trial_seconds")})
                target = RESULTS / method
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                for item in KEEP:
                    if (out / item).exists():
                        shutil.copy(out / item, target / item)
            summary["methods"][method] = record
            path.write_text(json.dumps(summary, indent=1) + "\n")
            print(method, json.dumps({k: record.get(k) for k in ("exit", "start_val_knn", "best_val_knn",
                                                                 "wall_seconds", "error")}), flush=True)


if __name__ == "__main__":
    main()
