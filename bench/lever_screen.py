"""The recipe-lever screens of bench/results/runs-tuned/PLAN-byol.md, judged by the rule fixed there.

Each lever is one change to a method's recipe, trained at the standard budget (seed 0, fp32, validation split).
It passes when its final online-monitor kNN (validation: 2,000 images against a 5,000-image bank) is at least
BAR points over the best final monitor kNN of the method's three recipe seeds (bench/results/runs-seeds). Passing
only sends a lever on to seeds 1 and 2; adoption is judged on all three seeds' monitors (`adoption`).

    python bench/lever_screen.py        # writes bench/results/runs-tuned/lever-screen.json and prints the table

The full-protocol validation figures of each lever's run (eval.json) are reported beside, not judged.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from folder_screen import monitor_by_epoch
from seed_spread import eval_file, margins, read, scores, spread
from tuned_pick import figures

RESULTS = Path(__file__).resolve().parent / "results"
TUNED = RESULTS / "runs-tuned"
BAR = 0.5  # points over the best recipe seed's final monitor kNN
SEEDS = (0, 1, 2)
BLUR_ASYM = "augment.blur_p=1.0 augment.second_blur_p=0.1"  # BYOL's blur half of its asymmetric views (i)
# method -> lever name -> the one setting it changes (the plan's list, in its order)
LEVERS = {
    "byol": {"tau0.99": "params.ema_momentum=0.99", "lr0.12": "optim.lr=0.12", "lr0.03": "optim.lr=0.03",
             "solarize2": "augment.second_solarize_p=0.2", "wide2048": "params.projection_hidden=2048",
             "blur-asym": BLUR_ASYM},
    "simsiam": {"lr0.015": "optim.lr=0.015"},
    "directpred": {"wide2048": "params.projection_hidden=2048", "solarize2": "augment.second_solarize_p=0.2",
                   "local-crops2": "augment.local_crops=2"},
    "directcopy": {"wide2048": "params.projection_hidden=2048", "solarize2": "augment.second_solarize_p=0.2"},
    "barlow-twins": {"solarize2": "augment.second_solarize_p=0.2"},
    "nn-byol": {"solarize2": "augment.second_solarize_p=0.2", "blur-asym": BLUR_ASYM},
}
# (method, lever) -> the adopted lever it is stacked on: its three runs are that lever's recipe seeds (PLAN-byol (i))
STACKED_ON = {("byol", "blur-asym"): "solarize2", ("nn-byol", "blur-asym"): "solarize2"}
RANDOM_INIT_VAL = TUNED / "baseline-conv6-val" / "random-init"  # the untrained Conv6, same protocol


def final_monitor(run: Path, epochs: int = 4) -> float | None:
    """The run's monitor kNN after its last epoch (the standard budget's 4 by default); None while it is missing."""
    return monitor_by_epoch(run / "metrics.jsonl").get(epochs)


def lever_runs(method: str, lever: str) -> dict[int, Path]:
    """A lever's three seeds: the screen run (seed 0) and its follow-up seeds 1 and 2."""
    return {0: TUNED / f"{method}-{lever}-full-x4"} | {
        seed: TUNED / f"{method}-{lever}-full-x4-seed{seed}" for seed in SEEDS[1:]}


def recipe_finals(method: str, lever: str = "") -> dict[int, float | None]:
    """The final monitors of the recipe's three seeds that ``lever`` is judged against: the runs seed_spread scores
    (its seed 0 is the accuracy table's own run where runs-seeds has none: nn-byol's), or, for a lever stacked on an
    adopted one (STACKED_ON), that lever's three runs."""
    base = STACKED_ON.get((method, lever))
    runs = lever_runs(method, base) if base else {seed: eval_file(method, seed).parent for seed in SEEDS}
    return {seed: final_monitor(run) for seed, run in runs.items()}


def validation_figures(run: Path) -> dict[str, float] | None:
    """The run's full-protocol validation figures (tuned_pick's reader, which refuses another split); None while
    the run has not been evaluated."""
    return figures(run / "eval.json") if (run / "eval.json").exists() else None


def adoption(method: str, lever: str, recipe: dict[int, float | None]) -> dict | None:
    """Seeds 1 and 2 of a passing lever (runs-tuned/METHOD-LEVER-full-x4-seedS; seed 0 is the screen run):
    adopted when the three finals' mean is BAR points over the recipe's mean and no seed is below the recipe's
    seed of the same number."""
    runs = lever_runs(method, lever)
    finals = {seed: final_monitor(run) for seed, run in runs.items()}
    if None in finals.values() or None in recipe.values():
        return None
    mean, recipe_mean = statistics.mean(finals.values()), statistics.mean(recipe.values())
    adopted = mean >= recipe_mean + BAR / 100 - 1e-9 and all(finals[s] >= recipe[s] for s in SEEDS)
    return {"finals": finals, "mean": round(mean, 5), "recipe_mean": round(recipe_mean, 5), "adopted": adopted,
            "test_margins_points": test_margins(runs) if adopted else None}


def test_margins(runs: dict[int, Path]) -> dict | None:
    """An adopted lever's test figures (seed 0's eval-test.json, read once after the screen; seeds 1 and 2 trained
    with eval.split=test) minus the random-init Conv6 of the same seed, in points: seed_spread's reference, readers
    and margins."""
    files = {seed: run / ("eval-test.json" if seed == 0 else "eval.json") for seed, run in runs.items()}
    if not all(path.exists() for path in files.values()):
        return None
    per_seed = {seed: margins(scores(read(path)), scores(read(eval_file("random-init", seed))))
                for seed, path in files.items()}
    return {"per_seed": per_seed, **spread(per_seed)}


def bar_of(recipe: dict[int, float | None]) -> float:
    return round(max(v for v in recipe.values() if v is not None) + BAR / 100, 5)


def screen() -> dict:
    out: dict = {"bar_points": BAR, "random_init_val": validation_figures(RANDOM_INIT_VAL), "methods": {}}
    for method, levers in LEVERS.items():
        first = recipe_finals(method)
        entry: dict = {"recipe_finals": first, "bar": bar_of(first), "levers": {}}
        for lever, setting in levers.items():
            # a stacked lever is judged against the adopted lever's seeds, not the first recipe's
            recipe = recipe_finals(method, lever) if (method, lever) in STACKED_ON else first
            bar, run = bar_of(recipe), TUNED / f"{method}-{lever}-full-x4"
            final = final_monitor(run)
            passed = None if final is None else final >= bar - 1e-9
            entry["levers"][lever] = {
                "set": setting, "run": str(run.relative_to(RESULTS)), "final_monitor_knn": final,
                "monitor_knn_by_epoch": monitor_by_epoch(run / "metrics.jsonl"), "bar": bar, "passed": passed,
                "validation": validation_figures(run),
                "adoption": adoption(method, lever, recipe) if passed else None}
            if recipe is not first:
                entry["levers"][lever] |= {"stacked_on": STACKED_ON[(method, lever)], "recipe_finals": recipe}
        out["methods"][method] = entry
    return out


def main() -> None:
    result = screen()
    (TUNED / "lever-screen.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| method | lever | final monitor kNN | bar | passed | validation probe / kNN / NMI |")
    print("|---|---|---|---|---|---|")
    for method, entry in result["methods"].items():
        for row in entry["levers"].values():
            val = row["validation"]
            figures = " / ".join(f"{val[k]:.4f}" for k in ("probe", "knn", "nmi")) if val else "-"
            passed = {None: "-", True: "yes", False: "no"}[row["passed"]]
            print(f"| {method} | `{row['set']}` | {row['final_monitor_knn']} | {row['bar']} | {passed} | {figures} |")


if __name__ == "__main__":
    main()
