"""`selfsup tune` for every method on Fashion-MNIST (issue: "every method earns its place"), at a proxy budget.

Each study: the method's search space (selfsup/space.py and the method's ``search_space``) around its current
recipe, whose values are the first trial; at most TRIALS trials or BUDGET of search per method, whichever ends
first. A trial trains on 10,000 of the 55,000 training images for one epoch (the proxy that matched the hand-made
SimCLR study, bench/tune_targets.py) and is scored by the online monitor's kNN on 1,000 validation images with a
2,000-image bank; the test split is never read. nn-byol's trials train on the cosine neighbours of a VAE trained at
the same budget on the same images (method_args).

    python bench/tune_all.py [METHOD ...]        # about 5 minutes per method on 2 cores in fp32
    python bench/tune_all.py --verify METHOD ... # the starting and the tuned recipe, 3 seeds each
    python bench/tune_all.py --compare METHOD KEY=VALUE ...  # the starting recipe and it with these, 3 seeds each
    python bench/tune_all.py --table             # BENCHMARKS.md's table from the summary

--verify trains the method's starting recipe and its study's recipe.yaml again with three seeds at the trials'
budget and scores each by the online monitor's kNN on all 5,000 validation images against a 10,000-image bank
(the trials' values are single draws on 1,000 images; the best of ten is biased upwards), into the summary's
``verify`` record of the method.

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
           "parallel-ae", "parallel-dae", "layerwise", "autodecoder", "rae", "nn-byol")
BACKBONE = {"rae": "mlp"}  # rae's layer-wise scheme needs an MLP; every other method trains Conv6
# nn-byol's positives: cosine neighbours in the representation of a VAE trained at the trials' budget on the same
# 10,000 images (seed 004 mines them in a VAE's latent space), mined once per machine and reused
NEIGHBORS = Path(tempfile.gettempdir()) / "selfsup-tune-all" / "vae-proxy"
KEEP = ("study.db", "tune.json", "trials.csv", "recipe.yaml", "report.md")


SEEDS = (0, 1, 2)
VERIFY = ["--no-eval", "--set", "monitor.bank=10000", "--set", "monitor.queries=5000"]


def method_args(method: str) -> list[str]:
    """The arguments every trial and verification run of ``method`` adds to the proxy budget: its encoder, and for
    nn-byol the neighbour file of the proxy VAE (trained and mined first when missing)."""
    args = ["--backbone", BACKBONE.get(method, "conv6")]
    if method == "nn-byol":
        mined = NEIGHBORS / "neighbors-cosine.pt"
        if not mined.exists():
            shutil.rmtree(NEIGHBORS, ignore_errors=True)
            for command in (["train", "vae", *PROXY, "--backbone", "conv6", "--no-eval", "--out", str(NEIGHBORS)],
                            ["neighbors", str(NEIGHBORS), "--metric", "cosine", "--k", "10"]):
                subprocess.run([sys.executable, "-m", "selfsup.cli", *command], check=True, capture_output=True)
        args += ["--set", f"params.neighbors={mined}"]
    return args


def last_knn(run: Path) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["monitor_knn"] for r in records if "monitor_knn" in r][-1]


def seeds_knn(method: str, extra: list[str], tmp: str, label: str) -> dict:
    """The method trained with ``extra`` at the trials' budget, once per seed: the last validation kNN of each."""
    import statistics

    values = []
    for seed in SEEDS:
        run = Path(tmp) / f"{label}-{seed}"
        command = ["train", method, *PROXY, *method_args(method), *extra, *VERIFY,
                   "--seed", str(seed), "--out", str(run)]
        subprocess.run([sys.executable, "-m", "selfsup.cli", *command], check=True, capture_output=True)
        values.append(last_knn(run))
    return {"seeds": values, "mean": statistics.fmean(values), "std": statistics.stdev(values)}


def verify(methods: list[str], summary: dict, path: Path) -> None:
    """Each method's starting recipe against its study's recipe.yaml, three seeds each."""
    for method in methods:
        record = summary["methods"][method]
        recipe = RESULTS / method / "recipe.yaml"
        result: dict = {"scored_on": "online monitor kNN, all 5,000 validation images, 10,000-image bank"}
        with tempfile.TemporaryDirectory() as tmp:
            for label, extra in (("start", []), ("tuned", ["--config", str(recipe)])):
                result[label] = seeds_knn(method, extra, tmp, label)
        result["tuned_minus_start_points"] = round(100 * (result["tuned"]["mean"] - result["start"]["mean"]), 2)
        record["verify"] = result
        path.write_text(json.dumps(summary, indent=1) + "\n")
        print(method, json.dumps(result), flush=True)


def compare(method: str, sets: list[str], summary: dict, path: Path) -> None:
    """The starting recipe against the same with ``sets`` (KEY=VALUE overrides; a candidate found elsewhere, e.g.
    on the colour folder), three seeds each, into the method's ``compare`` records."""
    result: dict = {"sets": sets, "scored_on": "online monitor kNN, all 5,000 validation images, 10,000-image bank"}
    with tempfile.TemporaryDirectory() as tmp:
        result["start"] = seeds_knn(method, [], tmp, "start")
        result["candidate"] = seeds_knn(method, [arg for kv in sets for arg in ("--set", kv)], tmp, "candidate")
    result["candidate_minus_start_points"] = round(100 * (result["candidate"]["mean"] - result["start"]["mean"]), 2)
    summary["methods"].setdefault(method, {}).setdefault("compare", {})[" ".join(sets)] = result
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(method, json.dumps(result), flush=True)


def table(summary: dict) -> str:
    """The markdown table of BENCHMARKS.md "Every method's study" from the summary."""
    rows = ["| method | trials (complete / pruned) | starting recipe | best trial | 3 seeds, 5,000 images: start | "
            "tuned | tuned - start (points) |", "|---|---|---|---|---|---|---|"]
    for method, r in summary["methods"].items():
        trials = r.get("trials") or {}
        counts = f"{trials.get('complete', 0)} / {trials.get('pruned', 0)}" if trials else "failed: " + r.get(
            "error", "")[:60]
        v = r.get("verify")
        cells = ([f"{v['start']['mean']:.4f} ± {v['start']['std']:.4f}", f"{v['tuned']['mean']:.4f} ± "
                  f"{v['tuned']['std']:.4f}", f"{v['tuned_minus_start_points']:+.2f}"] if v else ["", "", ""])
        start = "" if r.get("start_val_knn") is None else f"{r['start_val_knn']:.3f}"
        best = "" if r.get("best_val_knn") is None else f"{r['best_val_knn']:.3f}"
        rows.append(f"| {method} | {counts} | {start} | {best} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    if "--table" in sys.argv:
        print(table(json.loads((RESULTS / "summary.json").read_text())))
        return
    if "--verify" in sys.argv:
        path = RESULTS / "summary.json"
        summary = json.loads(path.read_text())
        verify(sys.argv[sys.argv.index("--verify") + 1:], summary, path)
        return
    if "--compare" in sys.argv:  # --compare METHOD KEY=VALUE ...
        path = RESULTS / "summary.json"
        method, *sets = sys.argv[sys.argv.index("--compare") + 1:]
        compare(method, sets, json.loads(path.read_text()), path)
        return
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
            command = ["tune", method, *PROXY, *method_args(method), "--trials", TRIALS, "--budget", BUDGET,
                       "--out", str(out)]
            done = subprocess.run([sys.executable, "-m", "selfsup.cli", *command], capture_output=True, text=True)
            record: dict = {"command": "selfsup " + " ".join(command[:-2]) + f" --out {method}",
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
