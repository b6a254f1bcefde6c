"""Stage 5's choice, by the rule in bench/results/study/simclr-stage5/PLAN.md (written before the cells ran): the
lever cell with the highest validation kNN, ties within 0.3 points broken by NMI; the multi-crop cell is left out
when it would win, because its 20-epoch run does not fit the session it was planned in.

    python bench/study/stage5_pick.py        # prints the long run's overrides; writes choice.json beside the cells
"""

from __future__ import annotations

import json
from pathlib import Path

from summarize import figures  # the study's probe / knn / nmi of an eval.json (this script's folder)

STAGE = Path(__file__).resolve().parents[2] / "bench" / "results" / "study" / "simclr-stage5"
LEVERS = {"bn=all": ["--set", "params.projection_bn=all"],
          "crop=0.08-1": ["--set", "augment.crop_scale=0.08,1.0"],
          "blur=0.5": ["--set", "augment.blur_p=0.5"],
          "local-crops=2": ["--set", "augment.local_crops=2"]}
TOO_LONG = {"local-crops=2"}
TIE_POINTS = 0.3


def scores(cell: str) -> dict[str, float]:
    data = json.loads((STAGE / cell / "eval.json").read_text())
    assert data["split"]["scored_on"] == "val", cell
    return figures(data)


def pick(cells: dict[str, dict[str, float]], leave_out: set[str]) -> str:
    eligible = {name: s for name, s in cells.items() if name not in leave_out}
    best_knn = max(s["knn"] for s in eligible.values())
    tied = {name: s for name, s in eligible.items() if 100 * (best_knn - s["knn"]) <= TIE_POINTS}
    return max(tied, key=lambda name: tied[name]["nmi"])


def main() -> None:
    cells = {name: scores(name) for name in LEVERS}
    best = pick(cells, set())
    chosen = best if best not in TOO_LONG else pick(cells, TOO_LONG)
    choice = {"rule": "highest validation kNN among the lever cells, ties within 0.3 points broken by NMI; "
                      "local-crops=2 left out if it wins (its 20-epoch run does not fit the session)",
              "reference": {"tuned-fp32": scores("tuned-fp32")}, "cells": cells, "best": best, "chosen": chosen,
              "overrides": LEVERS[chosen]}
    (STAGE / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    print(chosen, " ".join(LEVERS[chosen]))


if __name__ == "__main__":
    main()
