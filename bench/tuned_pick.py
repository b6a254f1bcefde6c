"""Whether a study's recipe replaces the seeds' settings, by the rule fixed before the standard-budget runs
(bench/results/runs-tuned/PLAN-rae.md, PLAN-autodecoder-cae.md; RotNet's in BENCHMARKS "RotNet's tuned recipe"):
adopt if the study recipe's validation kNN gains at least a point over the seeds' settings and neither probe nor
NMI loses a point or more. Both at the standard budget, seed 0, fp32, scored on the validation split with the full
protocol; the random-init encoder under the same protocol is the reference.

    python bench/tuned_pick.py                  # every method checked so (CHECKED) with a finished run
    python bench/tuned_pick.py cae layerwise    # these

Reads bench/results/runs-tuned/METHOD-full-x4/eval.json (the study recipe) and the seeds' settings from
runs-tuned/METHOD-seed-settings-full-x4/eval.json or, where that was not trained, the accuracy table's run
evaluated again on the validation split (runs/METHOD-full-x4/eval-val.json, or runs/METHOD-seed-settings-full-x4/
once an adopted recipe's run replaced it in the table). Writes runs-tuned/decisions.json and
prints the table in BENCHMARKS "Every method's study".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from selfsup.eval.result import Evaluation

RESULTS = Path(__file__).resolve().parent / "results"
TUNED = RESULTS / "runs-tuned"
PROTOCOLS = ("probe", "knn", "nmi")
GAIN, LOSS = 1.0, 1.0  # points: kNN must gain GAIN; probe and NMI may not lose LOSS or more
REFERENCE = {"rae": TUNED / "baseline-mlp-val" / "random-init" / "eval.json"}
# the methods checked this way (ae's study recipe was judged by the online monitor before the rule existed:
# BENCHMARKS "Every method's study")
CHECKED = ("rotnet", "rae", "autodecoder", "cae", "layerwise")
CONV6_REFERENCE = TUNED / "baseline-conv6-val" / "random-init" / "eval.json"


def figures(path: Path) -> dict[str, float]:
    evaluation = Evaluation.read(path)
    if evaluation.scored_on != "val":
        raise SystemExit(f"{path} is not scored on the validation split")
    return {"probe": evaluation.probe_accuracy, "knn": evaluation.knn_accuracy, "nmi": evaluation.nmi}


def seed_settings(method: str) -> Path:
    """The seeds' settings' validation figures: their own run, or the table's run evaluated on validation (moved to
    runs/METHOD-seed-settings-full-x4 once the study recipe's run took its place in the table)."""
    for path in (TUNED / f"{method}-seed-settings-full-x4" / "eval.json",
                 RESULTS / "runs" / f"{method}-seed-settings-full-x4" / "eval-val.json"):
        if path.exists():
            return path
    return RESULTS / "runs" / f"{method}-full-x4" / "eval-val.json"


def decide(study: dict[str, float], seeds: dict[str, float]) -> tuple[bool, dict[str, float]]:
    gain = {k: round(100 * (study[k] - seeds[k]), 2) for k in PROTOCOLS}
    return gain["knn"] >= GAIN and gain["probe"] > -LOSS and gain["nmi"] > -LOSS, gain


def main() -> None:
    methods = sys.argv[1:] or [m for m in CHECKED if (TUNED / f"{m}-full-x4" / "eval.json").exists()]
    decisions = {"rule": f"adopt if validation kNN gains >= {GAIN} point and neither probe nor NMI loses >= {LOSS} "
                         "point (study recipe - seeds' settings)", "methods": {}}
    lines = ["| method, standard budget, validation split | seeds' settings (probe / kNN / NMI) | study recipe | "
             "difference (points) | random init | adopted |", "|---|---|---|---|---|---|"]
    for method in methods:
        study_path, seeds_path = TUNED / f"{method}-full-x4" / "eval.json", seed_settings(method)
        reference_path = REFERENCE.get(method, CONV6_REFERENCE)
        study, seeds, reference = figures(study_path), figures(seeds_path), figures(reference_path)
        adopted, gain = decide(study, seeds)
        decisions["methods"][method] = {
            "study_recipe": study, "seed_settings": seeds, "random_init": reference, "gain_points": gain,
            "adopted": adopted, "sources": [str(p.relative_to(RESULTS)) for p in (study_path, seeds_path,
                                                                                   reference_path)]}
        row = [" / ".join(f"{s[k]:.4f}" for k in PROTOCOLS) for s in (seeds, study)]
        lines.append(f"| {method} | {row[0]} | {row[1]} | " + " / ".join(f"{gain[k]:+.1f}" for k in PROTOCOLS)
                     + f" | {' / '.join(f'{reference[k]:.4f}' for k in PROTOCOLS)} | {'yes' if adopted else 'no'} |")
    (TUNED / "decisions.json").write_text(json.dumps(decisions, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
