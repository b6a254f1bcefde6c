"""Behaviour unchanged by a refactor: the same small runs with the code at BASE and at the working tree, compared
exactly (eval.json's protocols, data record and split, and every logged loss).

    python bench/same_before_after.py BASE     # e.g. e691212; about 1-2 minutes per case per side on 2 cores

Each case trains from the command line in a fresh process, fp32, a fixed seed, with the evaluation's feature
extraction in fp32; BASE runs from a git worktree in /tmp. Raw output: bench/results/same-before-after.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "same-before-after.json"
COMMON = ["--precision", "fp32", "--quiet", "--seed", "3", "--set", "eval.train_limit=3000", "--set",
          "eval.test_limit=1000", "--set", "eval.precision=fp32"]
FASHION = ["--dataset", "fashion-mnist", "--limit", "2000", "--epochs", "1"]
CASES = {
    "simclr, Fashion-MNIST": ["simclr", *FASHION],
    "ae, Fashion-MNIST": ["ae", *FASHION],
    # the colour folder of bench/robust_folder.py (built when missing): the folder reader, channels and resize
    "byol, image folder": ["byol", "--dataset", "image-folder", "--data-dir", "/tmp/selfsup-robust-folder",
                           "--epochs", "2"],
}
COMPARED = ("linear_probe", "knn", "kmeans", "data", "split", "features")


def run(source: Path, args: list[str], out: Path) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    subprocess.run([sys.executable, "-m", "selfsup.cli", "train", *args, *COMMON, "--out", str(out)], check=True,
                   capture_output=True, env=environment, cwd=tempfile.gettempdir())
    evaluation = json.loads((out / "eval.json").read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"eval": {key: evaluation[key] for key in COMPARED},
            "losses": [r["loss"] for r in records if "loss" in r],
            "epoch_losses": [r["epoch_loss"] for r in records if "epoch_loss" in r]}


def main() -> None:
    base = sys.argv[1]
    if not Path("/tmp/selfsup-robust-folder").exists():
        sys.path.insert(0, str(ROOT / "bench"))
        from robust_folder import FOLDER, build

        build(FOLDER)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"command": f"python bench/same_before_after.py {base}", "base": base,
              "head": head.strip() + (" + working tree" if subprocess.run(["git", "diff", "--quiet"], cwd=ROOT)
                                      .returncode else ""), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), base], cwd=ROOT, check=True)
        try:
            for name, args in CASES.items():
                before = run(worktree, args, Path(tmp) / "before")
                after = run(ROOT, args, Path(tmp) / "after")
                same = {key: before["eval"][key] == after["eval"][key] for key in COMPARED}
                same["losses"] = before["losses"] == after["losses"] and before["epoch_losses"] == after["epoch_losses"]
                result["cases"][name] = {"args": args, "identical": same, "all_identical": all(same.values()),
                                         "knn_accuracy": after["eval"]["knn"]["accuracy"],
                                         "losses_compared": len(after["losses"]) + len(after["epoch_losses"])}
                print(name, json.dumps(result["cases"][name]["identical"]), flush=True)
                for side in ("before", "after"):
                    subprocess.run(["rm", "-rf", str(Path(tmp) / side)], check=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
