"""Screen a recipe change on the colour folder of bench/robust_folder.py: the first epochs of the 150-epoch run.

The variant trains with the folder benchmark's command and schedule (150 epochs, so its first epochs are exactly
those of the full run) plus its overrides, and is stopped after the online monitor's measurement at --stop-epoch.
Only the validation split of the folder is read (the monitor's kNN on 150 held-out training crops); the test crops
are not. The rule of bench/results/robust-folder/PLAN-rotnet.md: a variant "held so far" when its mean monitor
kNN over the last five measured epochs (26-30 for --stop-epoch 30) is at least the first measurement minus 0.05.

    python bench/folder_screen.py rotnet --name hidden0 --set params.hidden=0

Raw output: bench/results/robust-folder/METHOD-screen/NAME/ (config.yaml, metrics.jsonl) and the variant's entry
in bench/results/robust-folder/METHOD-screen/screen.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from robust_folder import DEGRADED, FOLDER, RESULTS, WORK, build, train_command

from selfsup.train.rundir import parse_metrics


def monitor_by_epoch(metrics: Path) -> dict[int, float]:
    if not metrics.exists():
        return {}
    return {int(r["epoch"]): round(r["monitor_knn"], 5) for r in parse_metrics(metrics) if "monitor_knn" in r}


def verdict(knn: dict[int, float], stop_epoch: int) -> dict:
    last = [knn[e] for e in range(stop_epoch - 4, stop_epoch + 1) if e in knn]
    mean = round(sum(last) / len(last), 4) if len(last) == 5 else None
    return {"val_knn_by_epoch": {str(e): v for e, v in sorted(knn.items())}, "first": knn.get(0),
            f"mean_{stop_epoch - 4}_{stop_epoch}": mean,
            "held": mean is not None and mean >= knn[0] - DEGRADED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--name", required=True, help="the variant's folder under METHOD-screen/")
    parser.add_argument("--set", dest="sets", action="append", required=True, metavar="KEY=VALUE")
    parser.add_argument("--stop-epoch", type=int, default=30)
    args = parser.parse_args()
    screen_dir = RESULTS / f"{args.method}-screen"
    run = screen_dir / args.name
    if run.exists():
        raise SystemExit(f"{run} exists; choose another --name")
    build(FOLDER)
    command = [sys.executable, "-m", "selfsup.cli",
               *train_command(args.method, 150, run, ["train.threads=1", *args.sets], WORK)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.time()
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) as process:
        while process.poll() is None and max(monitor_by_epoch(run / "metrics.jsonl"), default=-1) < args.stop_epoch:
            time.sleep(10)
        process.terminate()
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    shutil.rmtree(run / "plots", ignore_errors=True)
    knn = {e: v for e, v in monitor_by_epoch(run / "metrics.jsonl").items() if e <= args.stop_epoch}
    path = screen_dir / "screen.json"
    screen = json.loads(path.read_text()) if path.exists() else {
        "plan": f"bench/results/robust-folder/PLAN-{args.method}.md",
        "rule": f"mean validation kNN over epochs {args.stop_epoch - 4}-{args.stop_epoch}, if >= first - {DEGRADED}",
        "command": f"selfsup train {args.method} --data-dir FOLDER --dataset image-folder --epochs 150 --quiet "
                   f"--set train.threads=1 --set KEY=VALUE (stopped after epoch {args.stop_epoch}'s monitor)",
        "variants": {}}
    key = " ".join(args.sets)
    screen["variants"][key] = {**verdict(knn, args.stop_epoch), "folder": args.name,
                               "seconds": round(time.time() - started, 1)}
    path.write_text(json.dumps(screen, indent=1) + "\n")
    print(key, json.dumps(screen["variants"][key]))


if __name__ == "__main__":
    main()
