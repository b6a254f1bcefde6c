"""Every method's default on a small colour folder, short epochs and a long schedule (issue: "recipes that hold off
the dataset they were tuned on").

The folder: ten colour photographs that ship with scikit-image (astronaut, chelsea, coffee, hubble_deep_field,
immunohistochemistry, retina, rocket, the left image of stereo_motorcycle) and scikit-learn (china, flower), one
class per photograph. 150 training crops per photograph from its left 60 % and 50 test crops from its right 40 %
(disjoint pixels): square crops of 12-45 % of the region's shorter side at a random place, resized to 32 px
(Pillow, Lanczos), PNG. 1,500 training images, so a batch of 128 gives 10 steps per epoch (1,350 after the
150-image validation split is held out) and 150 epochs 1,500 steps: the setting in which SimCLR's tuned recipe once
collapsed by step 100 (its 0.2-epoch warm-up was 2 steps).

Each method trains with its default recipe (`selfsup train METHOD --data-dir FOLDER --epochs 150`, nothing else
set; nn-byol mines its neighbours with the byol run's encoder), then the evaluation runs on the test crops. A run
*survives* when it exits 0 and the collapse monitor's last embedding std is above the threshold; it *held* when
its last validation kNN (the online monitor, 150 held-out training crops) is at most 5 points below its first.
The random-init encoder's figures under the same protocols (`selfsup baseline`) are the reference.

    pip install scikit-image                          # the photographs (bench extra)
    python bench/robust_folder.py [METHOD ...] [--epochs 150]   # about 10-30 minutes per method on 2 cores
    python bench/robust_folder.py --references        # only the random-init references (Conv6; MLP for rae)
    python bench/robust_folder.py --table             # BENCHMARKS.md's table from the summary
    python bench/robust_folder.py --refresh           # the traces again from the kept metrics, then the table

Raw output: bench/results/robust-folder/summary.json (per method: command, exit code, seconds, the last
collapse statistics, eval.json's figures) and each run's metrics.jsonl and eval.json under the same folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from selfsup.eval.result import Evaluation
from selfsup.train.rundir import parse_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "robust-folder"
FOLDER = Path("/tmp/selfsup-robust-folder")
WORK = Path("/tmp/selfsup-robust-runs")  # the runs (and nn-byol's neighbour file) before their records are kept
TRAIN_PER_CLASS, TEST_PER_CLASS, SIZE, SEED = 150, 50, 32, 0
# the joint-embedding family first: a too-short warm-up collapses it (the autoencoders have no collapse to fall into)
METHODS = ("simclr", "byol", "simsiam", "directpred", "directcopy", "barlow-twins", "nn-byol", "rotnet", "ae", "dae",
           "vae", "cae", "parallel-ae", "parallel-dae", "layerwise", "autodecoder", "rae")
BACKBONE = {"rae": "mlp"}  # rae's layer-wise scheme needs an MLP; every other method uses the default Conv6
KEEP = ("metrics.jsonl", "eval.json", "config.yaml")
# "held": the last validation kNN at most this far below the first (a dimensional collapse keeps the embedding std
# above the collapse threshold while the representation loses what it had)
DEGRADED = 0.05


def photographs() -> dict[str, np.ndarray]:
    """Class name -> an RGB photograph (uint8, H x W x 3), from the sample images scikit-image and scikit-learn ship."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "hubble_deep_field",
                                                         "immunohistochemistry", "retina", "rocket")}
    photos["motorcycle"] = data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for name, image in zip(sample.filenames, sample.images):
        photos[Path(name).stem] = image
    return photos


def crops(photo: np.ndarray, count: int, rng: np.random.Generator) -> list:
    """``count`` square crops of 12-45 % of the region's shorter side, resized to SIZE px."""
    from PIL import Image

    height, width = photo.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.12, 0.45) * min(height, width))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        patch = Image.fromarray(np.ascontiguousarray(photo[top:top + side, left:left + side]))
        out.append(patch.resize((SIZE, SIZE), Image.LANCZOS))
    return out


def build(root: Path) -> Path:
    """The folder (root/train/CLASS/*.png, root/test/CLASS/*.png), deterministic; kept once complete (a second
    process running other methods shares it)."""
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    for name, photo in sorted(photographs().items()):
        cut = int(0.6 * photo.shape[1])
        regions = (("train", photo[:, :cut], TRAIN_PER_CLASS), ("test", photo[:, cut:], TEST_PER_CLASS))
        for split, region, count in regions:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, image in enumerate(crops(region, count, rng)):
                image.save(folder / f"{i:03d}.png")
    (root / ".complete").touch()
    return root


def selfsup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfsup.cli", *args], capture_output=True, text=True)


def last_collapse(run: Path) -> dict:
    records = parse_metrics(run / "metrics.jsonl")
    logged = [r for r in records if "embedding_std" in r]
    if not logged:
        return {}
    last = logged[-1]
    return {"step": last.get("step"), "embedding_std": last["embedding_std"],
            "effective_rank": last.get("effective_rank"), "min_embedding_std": min(r["embedding_std"] for r in logged)}


def trace(metrics: Path) -> dict:
    """How the run went: the online monitor's validation kNN (first, best, last) and the embeddings' effective rank
    (first and last logged): a dimensional collapse keeps the embedding std up while the rank and kNN fall."""
    records = parse_metrics(metrics)
    knn = [r["monitor_knn"] for r in records if "monitor_knn" in r]
    rank = [r["effective_rank"] for r in records if "effective_rank" in r]
    out = {}
    if knn:
        out.update(val_knn_first=knn[0], val_knn_best=max(knn), val_knn_last=knn[-1])
    if rank:
        out.update(rank_first=rank[0], rank_last=rank[-1])
    return out


def figures(run: Path) -> dict:
    path = run / "eval.json"
    if not path.exists():
        return {}
    evaluation = Evaluation.read(path)
    # a run stopped by the collapse monitor writes an eval.json with empty protocols
    return scores(evaluation) if evaluation.has_figures else {}


def kept_best(run: Path) -> dict:
    """train.keep_best: the measurement whose weights were evaluated, and whether train.patience stopped the run."""
    path = run / "eval.json"
    training = Evaluation.read(path).training if path.exists() else None
    if not training or "kept_best" not in training:
        return {}
    return {**training["kept_best"], "stopped_early": training.get("stopped_early", False)}


def scores(evaluation: Evaluation) -> dict:
    """An eval.json's three headline figures."""
    return {"probe_acc": evaluation.probe_accuracy, "knn_acc": evaluation.knn_accuracy, "kmeans_nmi": evaluation.nmi}


def train_command(method: str, epochs: int, run: Path, sets: list[str], work: Path) -> list[str]:
    command = ["train", method, "--data-dir", str(FOLDER), "--dataset", "image-folder", "--epochs", str(epochs),
               "--quiet", "--out", str(run)]
    for assignment in sets:
        command += ["--set", assignment]
    if method in BACKBONE:
        command += ["--backbone", BACKBONE[method]]
    if method == "nn-byol":
        command += ["--set", "neighbors=" + str(work / "neighbors.pt")]
    return command


def record_again(method: str, epochs: int, summary: dict, work: Path, sets: list[str], label: str = "") -> None:
    """Record a run that finished (its eval.json written) when the recorder itself failed, without training."""
    run = work / (label or method)
    if not (run / "eval.json").exists():
        raise SystemExit(f"{run} has no eval.json: train it (without --record)")
    seconds = round((run / "eval.json").stat().st_mtime - (run / "config.yaml").stat().st_mtime, 1)
    record_run(run, label or method, train_command(method, epochs, run, sets, work), 0, seconds, "", summary, work)
    summary["methods"][label or method]["seconds_note"] = "recorded again with --record: config.yaml to eval.json"


def run_method(method: str, epochs: int, summary: dict, work: Path, sets: list[str], label: str = "") -> None:
    """Train and score one method; recorded under ``label`` (a variant: the method with ``sets``) or its name."""
    run = work / (label or method)
    shutil.rmtree(run, ignore_errors=True)
    command = train_command(method, epochs, run, sets, work)
    if method == "nn-byol":
        mined = selfsup("neighbors", str(work / "byol"), "--out", str(work / "neighbors.pt"))
        if mined.returncode:
            raise SystemExit(f"mining nn-byol's neighbours failed: {mined.stderr[-2000:]}")
    start = time.perf_counter()
    done = selfsup(*command)
    record_run(run, label or method, command, done.returncode, round(time.perf_counter() - start, 1), done.stderr,
               summary, work)


def slug(key: str) -> str:
    """A folder name for a method or variant label: 'simsiam (lr 0.012)' -> 'simsiam-lr-0.012'."""
    return "-".join("".join(c if c.isalnum() or c in ".-" else " " for c in key).split())


def record_run(run: Path, key: str, command: list[str], exit_code: int, seconds: float, stderr: str, summary: dict,
               work: Path) -> None:
    """A finished run's record into the summary, its metrics, eval.json and config kept under RESULTS/key."""
    record = {"command": "selfsup " + " ".join(command).replace(str(FOLDER), "FOLDER").replace(str(work), "RUNS"),
              "exit": exit_code, "seconds": seconds}
    if exit_code:
        record["stderr_tail"] = stderr[-1500:]
    if (run / "metrics.jsonl").exists():
        record["collapse"] = last_collapse(run)
        record["trace"] = trace(run / "metrics.jsonl")
    record.update(figures(run))
    kept = kept_best(run)
    if kept:  # train.keep_best: the figures are those of the monitor's best measurement, not the last step's
        record["kept_best"] = kept
    from selfsup.ops.collapse import COLLAPSE_THRESHOLD

    std = record.get("collapse", {}).get("embedding_std")
    record["survived"] = exit_code == 0 and (std is None or std >= COLLAPSE_THRESHOLD)
    summary["methods"][key] = record
    keep = RESULTS / slug(key)
    keep.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (run / name).exists():
            shutil.copy(run / name, keep / name)
    print(key, json.dumps({k: v for k, v in record.items() if k != "stderr_tail"}), flush=True)


def reference_key(backbone: str) -> str:
    """Where the summary keeps the random-init figures of ``backbone`` (Conv6's under the original key)."""
    return "random_init" if backbone == "conv6" else f"random_init_{backbone}"


def baseline(summary: dict, work: Path, backbone: str = "conv6") -> None:
    out = work / ("baseline" if backbone == "conv6" else f"baseline-{backbone}")
    done = selfsup("baseline", "--dataset", "image-folder", "--data-dir", str(FOLDER), "--backbone", backbone,
                   "--out", str(out))
    if done.returncode:
        raise SystemExit(f"the baseline failed: {done.stderr[-2000:]}")
    summary[reference_key(backbone)] = scores(Evaluation.read(out / "random-init" / "eval.json"))
    print(f"random-init {backbone}", json.dumps(summary[reference_key(backbone)]), flush=True)


def table(summary: dict) -> str:
    base = summary.get("random_init", {})
    rows = [f"Random-init Conv6 on the same folder: probe {base.get('probe_acc', float('nan')):.3f}, "
            f"kNN {base.get('knn_acc', float('nan')):.3f}, NMI {base.get('kmeans_nmi', float('nan')):.3f}."]
    for method, backbone in BACKBONE.items():
        other = summary.get(reference_key(backbone))
        if other:
            rows.append(f"Random-init {backbone.upper()} ({method}'s encoder, its reference): probe "
                        f"{other['probe_acc']:.3f}, kNN {other['knn_acc']:.3f}, NMI {other['kmeans_nmi']:.3f}.")
    rows += ["",
            "| method | survived | held | exit | last embedding std (min) | effective rank first -> last | "
            "validation kNN first -> last (best) | probe | kNN | NMI | minutes |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in summary["methods"].items():
        c, t = r.get("collapse", {}), r.get("trace", {})
        std = f"{c['embedding_std']:.2f} ({c['min_embedding_std']:.2f})" if c else "not logged"
        rank = f"{t['rank_first']:.0f} -> {t['rank_last']:.0f}" if "rank_first" in t else "-"
        knn = (f"{t['val_knn_first']:.3f} -> {t['val_knn_last']:.3f} ({t['val_knn_best']:.3f})"
               if "val_knn_first" in t else "-")
        kept = r.get("kept_best")
        if kept:  # the evaluated weights are the kept measurement's, so "held" judges them
            early = ", stopped early" if kept["stopped_early"] else ""
            knn += f"; kept {kept['monitor_knn']:.3f} (epoch {kept['epoch']}{early})"
        cells = [f"{r[k]:.3f}" if k in r else "-" for k in ("probe_acc", "knn_acc", "kmeans_nmi")]
        judged = kept["monitor_knn"] if kept else t.get("val_knn_last", 0)
        held = "yes" if judged >= t.get("val_knn_first", 1) - DEGRADED else "NO"
        survived = "yes" if r["survived"] else "NO"
        rows.append(f"| {method} | {survived} | {held} | {r['exit']} | {std} | {rank} | {knn} | {' | '.join(cells)} | "
                    f"{r['seconds'] / 60:.0f} |")
    missing = [method for method in METHODS if method not in summary["methods"]]
    if missing:
        rows += ["", f"Not run yet: {', '.join(missing)}."]
    return "\n".join(rows)


def merge(path: Path, summary: dict, key: str, section: str = "") -> None:
    """Write ``summary``'s entry ``key`` (under ``section``) into the summary file as the file is now: another
    process may have added its own entries meanwhile."""
    current = json.loads(path.read_text()) if path.exists() else summary
    (current[section] if section else current)[key] = (summary[section] if section else summary)[key]
    path.write_text(json.dumps(current, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="*", default=list(METHODS))
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a variant: train the (one) method with this override too (repeatable); needs --label")
    parser.add_argument("--label", default="", help="the name a variant is recorded under, e.g. 'simsiam (lr 0.03)'")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--record", action="store_true",
                        help="record the methods' finished run folders again without training (when the recorder "
                             "failed); seconds from config.yaml's to eval.json's modification time")
    parser.add_argument("--references", action="store_true",
                        help="only the random-init references (Conv6 and every other backbone a method here uses)")
    parser.add_argument("--refresh", action="store_true", help="recompute each run's trace from its kept metrics")
    args = parser.parse_args()
    if (args.sets or args.label) and (len(args.methods) != 1 or not args.label or not args.sets):
        parser.error("a variant is one method with --set and a --label")
    path = RESULTS / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"methods": {}}
    if args.refresh:
        for method, record in summary["methods"].items():
            if (RESULTS / slug(method) / "metrics.jsonl").exists():
                record["trace"] = trace(RESULTS / slug(method) / "metrics.jsonl")
        path.write_text(json.dumps(summary, indent=1) + "\n")
    if args.table or args.refresh:
        print(table(summary))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    build(FOLDER)
    summary.update({"command": "python bench/robust_folder.py", "epochs": args.epochs,
                    "folder": f"10 photographs x ({TRAIN_PER_CLASS} train + {TEST_PER_CLASS} test) crops at {SIZE} px"})
    for backbone in ("conv6", *sorted({BACKBONE[m] for m in args.methods if m in BACKBONE})):
        # a reference missing from the summary is measured once (every process merges it into the file)
        if reference_key(backbone) not in summary:
            baseline(summary, args.work, backbone)
            merge(path, summary, reference_key(backbone))
    if args.references:
        return
    for method in args.methods:
        if args.record:
            record_again(method, args.epochs, summary, args.work, args.sets, args.label)
        else:
            run_method(method, args.epochs, summary, args.work, args.sets, args.label)
        merge(path, summary, args.label or method, section="methods")


if __name__ == "__main__":
    main()
