"""Benchmarks (never timed unit tests): throughput against the model's own cost, the data share of a step,
evaluation time on 60k features, and accuracy under a documented budget beside the baselines.

Every figure is measured in the same process as its reference, and reported as a ratio where possible.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from selfsup.config import DataConfig, EvalConfig, RunConfig
from selfsup.data.catalog import cache_root
from selfsup.eval.result import Evaluation
from selfsup.train.device import cpu_model, device_name, probe_step_time, resolve_device, resolve_precision
from selfsup.train.rundir import evaluation_differences, read_run_config

log = logging.getLogger(__name__)

# Budgets are defined by images seen, so machines of different speed compare. The standard budget: 4 epochs over
# the 55,000 Fashion-MNIST training images left after the 5,000-image validation split (220,000 images seen;
# about 3 minutes of SimCLR + Conv6 training on a 2-core CPU with native bf16, about 30 on one without),
# evaluated on the test split with the probe and kNN fitted on those 55,000. "long" is the longer CPU budget.
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"limit": 2000, "epochs": 2, "speed_steps": 4, "eval_train": 10000},
    "standard": {"limit": None, "epochs": 4, "speed_steps": 12, "eval_train": None},
    "long": {"limit": None, "epochs": 20, "speed_steps": 12, "eval_train": None},
}


def budget_tag(budget: dict[str, Any]) -> str:
    """``10000x10`` for a subset budget, ``full-x4`` for epochs over the whole training set."""
    return f"{budget['limit'] or 'full-'}x{budget['epochs']}"


def _reference_config(budget: dict[str, Any]) -> RunConfig:
    """The default method (RunConfig's: SimCLR) on Conv6 and Fashion-MNIST under ``budget``: what speed is timed on."""
    return RunConfig.for_method(RunConfig().method, overrides={"backbone": "conv6", "dataset": "fashion-mnist",
                                                               "limit": budget["limit"], "epochs": budget["epochs"]})


def bench_speed(budget: dict[str, Any], repeats: int = 3) -> dict[str, Any]:
    """Images/s of the trainer's step against the same step on views made beforehand (the model-only reference),
    both through ``selfsup.train.step.run_step`` at the run's precision and memory format, interleaved step by
    step so that the machine's drifts fall on both alike; the ratio's spread over ``repeats`` blocks is reported."""
    import statistics

    from selfsup.api import build_method, training_data
    from selfsup.data import InMemorySource
    from selfsup.methods import MethodContext
    from selfsup.train.device import resolve_channels_last
    from selfsup.train.optim import build_optimizer
    from selfsup.train.step import StepSettings, run_step

    config = _reference_config(budget)
    device = resolve_device("auto")
    cache = cache_root() / "precision.json"
    precision = resolve_precision("auto", device, cache)
    channels_last = resolve_channels_last(config.train.channels_last, device, cache, bf16=precision == "bf16")
    dataset = training_data(config)
    torch.manual_seed(0)
    method = build_method(config, MethodContext(dataset.channels, dataset.image_size, len(dataset)))
    method = method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)
    optimizer = build_optimizer(method, config.optim)
    source = InMemorySource(dataset, config.train.batch_size, 0, device)
    generator = torch.Generator(device=device).manual_seed(0)
    settings = StepSettings(device.type, precision == "bf16", channels_last, config.optim.grad_clip)
    steps = budget["speed_steps"] * repeats
    batches = (batch for epoch in itertools.count(1) for batch in source.epoch(epoch))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed_step(index: int, prepared: bool) -> float:
        """One step; ``prepared``: its batch and views made before the clock starts (the model-only reference)."""
        tic = time.perf_counter()
        if prepared:
            batch = next(batches)
            if channels_last:
                batch.images = batch.images.contiguous(memory_format=torch.channels_last)
            views = method.make_views(batch, generator)
            sync()
            tic = time.perf_counter()
        else:
            batch, views = next(batches), None
        run_step(method, method, optimizer, batch, generator, index, 2 * steps + 2, config.optim.lr, settings, views)
        sync()
        return time.perf_counter() - tic

    timed_step(0, False), timed_step(1, True)  # warm-up, untimed: the first steps allocate
    full, model = [], []
    for index in range(steps):
        full.append(timed_step(2 + 2 * index, False))
        model.append(timed_step(3 + 2 * index, True))
    block = steps // repeats
    ratios = [sum(full[i:i + block]) / sum(model[i:i + block]) for i in range(0, steps, block)]
    batch_size = config.train.batch_size
    return {
        "steps": steps, "repeats": repeats, "batch_size": batch_size, "precision": precision,
        "channels_last": channels_last, "step_function": "selfsup.train.step.run_step",
        "train_images_per_s": round(batch_size * steps / sum(full), 1),
        "model_only_images_per_s": round(batch_size * steps / sum(model), 1),
        "epoch_time_ratio_to_model": round(sum(full) / sum(model), 3),
        "ratio_per_repeat": [round(r, 3) for r in ratios],
        "ratio_spread": round(max(ratios) - min(ratios), 3),
        "data_share_of_step": round(max(0.0, 1 - statistics.median(model) / statistics.median(full)), 4),
        "precision_probe_ms": {"fp32": round(probe_step_time(device, False) * 1e3, 1),
                               "bf16": round(probe_step_time(device, True) * 1e3, 1)},
    }


def bench_eval(budget: dict[str, Any]) -> dict[str, Any]:
    """Evaluation time of a random-init Conv6 on Fashion-MNIST's 60k training / 10k test features."""
    from selfsup.api import evaluation_splits
    from selfsup.backbones import create_backbone
    from selfsup.eval import evaluate_features, extract_features, knn_accuracy

    eval_config = EvalConfig(train_limit=budget["eval_train"])
    device = resolve_device("auto")
    train_split, test_split = evaluation_splits(DataConfig(), eval_config, 0)
    torch.manual_seed(0)
    encoder = create_backbone("conv6", in_channels=1, image_size=28).to(device).eval()
    tic = time.perf_counter()
    train_features = extract_features(encoder, train_split, device, eval_config.extract_batch_size)
    test_features = extract_features(encoder, test_split, device, eval_config.extract_batch_size)
    extraction = time.perf_counter() - tic
    result = evaluate_features(train_features, train_split.labels, test_features, test_split.labels, eval_config)
    seconds = {"features": round(extraction, 2), **result.seconds}
    protocols = sum(result.seconds.values())
    tic = time.perf_counter()
    exact = knn_accuracy(train_features, train_split.labels, test_features, test_split.labels,
                         eval_config.knn_k, eval_config.knn_temperature)
    return {"train_features": result.features["train_size"], "feature_dim": result.features["dim"],
            "seconds": seconds, "probe_knn_kmeans_seconds": round(protocols, 2),
            "knn_accuracy_projected": result.knn_accuracy, "knn_accuracy_exact": exact["accuracy"],
            "knn_exact_seconds": round(time.perf_counter() - tic, 2)}


def bench_sweep(budget: dict[str, Any], cells: int = 3) -> dict[str, Any]:
    """What the sweep machinery adds per cell: the same small cells through ``run_sweep`` and through
    ``api.train`` by hand, in the same process, after one untimed warm-up run."""
    import tempfile

    from selfsup.api import train
    from selfsup.experiments.sweep import plan, run_sweep

    base = RunConfig().replace({"backbone": "mlp", "dataset": "fashion-mnist", "limit": 1000, "epochs": 1,
                                "eval.train_limit": 2000, "eval.test_limit": 500})
    grid = {"optim.lr": [f"{1e-3 * (1 + i)}" for i in range(cells)]}
    planned = plan([base.method], grid, base)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train(planned[0].config, out=root / "warm-up", progress=False)
        tic = time.perf_counter()
        for cell in planned:
            train(cell.config, out=root / "hand" / cell.name, resume=True, progress=False)
        by_hand = time.perf_counter() - tic
        tic = time.perf_counter()
        run_sweep(planned, root / "sweep", progress=False, echo=lambda _: None)
        swept = time.perf_counter() - tic
        tic = time.perf_counter()
        run_sweep(planned, root / "sweep", progress=False, echo=lambda _: None)  # every cell finished: all skipped
        rerun = time.perf_counter() - tic
    return {"cells": len(planned), "by_hand_seconds": round(by_hand, 2), "sweep_seconds": round(swept, 2),
            "overhead_per_cell_seconds": round((swept - by_hand) / len(planned), 3),
            "rerun_all_finished_seconds": round(rerun, 3)}


def bench_stream(images: int = 4096, batch_size: int = 256, steps: int = 8) -> dict[str, Any]:
    """Streaming against in-memory on the same image folder (Fashion-MNIST images written as PNG files):
    images/s of the data path alone and of full SimCLR + Conv6 steps, decoding in the training process
    or in 1-2 DataLoader workers."""
    import tempfile

    from PIL import Image

    from selfsup.api import build_method
    from selfsup.data import ImageDataset, InMemorySource, load_dataset
    from selfsup.data.readers import read_image_folder
    from selfsup.data.streaming import StreamingFolderSource
    from selfsup.methods import MethodContext
    from selfsup.train.step import StepSettings, run_step

    data = load_dataset("fashion-mnist", "train").random_subset(images, 0)
    device = resolve_device("auto")
    results: dict[str, Any] = {"images": images, "batch_size": batch_size, "image_size": 32}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (image, label) in enumerate(zip(data.images, data.labels.tolist())):
            folder = root / f"class{label}"
            folder.mkdir(exist_ok=True)
            Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
        decoded, labels, classes = read_image_folder(root, 32, 3)
        sources = {"in-memory": InMemorySource(ImageDataset(decoded, labels, classes), batch_size, 0, device)}
        for workers in (0, 1, 2):
            sources[f"stream, {workers} workers"] = StreamingFolderSource(root, 32, 3, batch_size, 0, device,
                                                                          workers=workers)
        config = _reference_config({"limit": images, "epochs": 1}).replace({"dataset": "image-folder"})
        torch.manual_seed(0)
        method = build_method(config, MethodContext(3, 32, images)).to(device)
        optimizer = torch.optim.Adam(method.parameters(), 1e-3)
        generator = torch.Generator(device=device).manual_seed(0)
        settings = StepSettings(device.type)
        for batch in sources["in-memory"].epoch(2):  # warm-up, untimed: the first steps allocate
            run_step(method, method, optimizer, batch, generator, 0, 1, 1e-3, settings)
            break
        for name, source in sources.items():
            tic = time.perf_counter()
            count = sum(batch.images.shape[0] for batch in source.epoch(0))
            data_rate = count / (time.perf_counter() - tic)
            tic, count = time.perf_counter(), 0
            for index, batch in enumerate(source.epoch(1)):
                if index == steps:
                    break
                run_step(method, method, optimizer, batch, generator, index, steps, 1e-3, settings)
                count += batch.images.shape[0]
            results[name] = {"data_images_per_s": round(data_rate, 1),
                             "train_images_per_s": round(count / (time.perf_counter() - tic), 1)}
    return results


def method_config(method: str, budget: dict[str, Any], extra: dict[str, Any] | None = None) -> RunConfig:
    """The benchmark configuration of ``method``: its tuned recipe (Conv6 unless the recipe names another
    encoder), the budget."""
    return RunConfig.for_method(method, overrides={"dataset": "fashion-mnist", "limit": budget["limit"],
                                                   "epochs": budget["epochs"], **(extra or {})})


def _mined_neighbors(source_method: str, budget: dict[str, Any], out: Path) -> Path:
    """Cosine neighbours on the benchmark subset in the representation of ``source_method``'s benchmark run
    (trained first if needed): the input of a method with ``neighbors_from``."""
    from selfsup.api import train
    from selfsup.experiments.neighbors import mine

    source_dir = out / "runs" / f"{source_method}-{budget_tag(budget)}"
    if not (source_dir / "eval.json").exists():
        train(method_config(source_method, budget), out=source_dir, resume=True)
    path = source_dir / "neighbors-cosine.pt"
    if not path.exists():
        mine(source_dir, "cosine", 10, path)
    return path


def _summary(evaluation: Evaluation, epochs: int = 1) -> dict[str, Any]:
    row: dict[str, Any] = {"linear_probe": evaluation.probe_accuracy, "knn": evaluation.knn_accuracy,
                           "kmeans_nmi": evaluation.nmi, "kmeans_accuracy": evaluation.kmeans_accuracy}
    if evaluation.reconstruction_mse is not None:
        row["reconstruction_mse"] = evaluation.reconstruction_mse
    if evaluation.training:
        row["seconds_per_epoch"] = round(evaluation.training["seconds"] / max(1, epochs), 1)
        row["images_seen"] = evaluation.training.get("images_seen")
    row["split"] = evaluation.scored_on
    return row


def current_evaluation(run_dir: Path) -> Evaluation:
    """The run's eval.json, evaluated again when it was computed with another config than the run's."""
    from selfsup.api import evaluate_run

    evaluation = Evaluation.from_dict(json.loads((run_dir / "eval.json").read_text()))
    stale = evaluation_differences(evaluation.to_dict(), read_run_config(run_dir))
    if stale:
        log.warning("%s/eval.json was computed with another config (%s); evaluating the run again", run_dir,
                    "; ".join(stale[:3]))
        training = evaluation.training
        evaluation, _ = evaluate_run(run_dir)
        if training is not None:  # the training record stays the run's own
            evaluation.training = training
    return evaluation


def _current_baselines(base_dir: Path, names: tuple[str, ...]) -> dict[str, Evaluation] | None:
    """The baselines' eval.json files when they exist and were scored on the test split with today's defaults."""
    if not all((base_dir / name / "eval.json").exists() for name in names):
        return None
    found = {name: Evaluation.from_dict(json.loads((base_dir / name / "eval.json").read_text())) for name in names}
    defaults = dataclasses.asdict(EvalConfig())
    for name, evaluation in found.items():
        recorded = (evaluation.baseline or {}).get("eval")
        if recorded is not None and {k: v for k, v in recorded.items() if k in defaults} != defaults:
            log.warning("%s/%s/eval.json was computed with other evaluation settings; measuring it again",
                        base_dir, name)
            return None
    return found


def bench_accuracy(budget: dict[str, Any], out: Path, methods: list[str] | None = None,
                   existing_only: bool = False) -> dict[str, Any]:
    """Each method under the budget, and the raw-pixel and random-init baselines, on the Fashion-MNIST test split.

    Finished runs under ``out/runs`` are reused; an unfinished one resumes from its checkpoint. With
    ``existing_only`` the table holds the finished runs and nothing is trained.
    """
    from selfsup.api import baseline, train
    from selfsup.methods import METHODS

    methods = methods or [RunConfig().method]
    rows: dict[str, Any] = {}
    for method in methods:
        METHODS.get(method)
        backbone = METHODS.get(method).recipe.get("backbone", "conv6")
        run_dir = out / "runs" / f"{method}{'' if backbone == 'conv6' else '-' + backbone}-{budget_tag(budget)}"
        if (run_dir / "eval.json").exists():
            evaluation = current_evaluation(run_dir)
        elif existing_only:
            continue
        else:
            extra = {}
            source = METHODS.get(method).neighbors_from
            if source is not None:  # its neighbours, mined on the same subset in the source method's representation
                extra["params.neighbors"] = str(_mined_neighbors(source, budget, out))
            config = method_config(method, budget, extra)
            evaluation = train(config, out=run_dir, resume=True).eval
        rows[method] = {"backbone": backbone, **_summary(evaluation, budget["epochs"])}
    for backbone in sorted({row["backbone"] for row in rows.values()} | {"conv6"}):
        base_dir = out / "runs" / ("baseline" if backbone == "conv6" else f"baseline-{backbone}")
        names = ("raw-pixels", "random-init")
        baselines = _current_baselines(base_dir, names) or baseline("fashion-mnist", backbone, out=base_dir)
        rows[f"random-init {backbone}"] = {"backbone": backbone, **_summary(baselines["random-init"])}
        rows["raw-pixels"] = {"backbone": None, **_summary(baselines["raw-pixels"])}
    return rows


MARK_BEGIN = "<!-- selfsup bench accuracy {budget}: generated, edits inside are overwritten -->"
MARK_END = "<!-- end selfsup bench accuracy {budget} -->"


def write_markdown_block(path: Path, budget_name: str, command: str, markdown: str) -> None:
    """Replace (or append) the generated accuracy table for ``budget_name`` in ``path``; text around it stays."""
    begin, end = MARK_BEGIN.format(budget=budget_name), MARK_END.format(budget=budget_name)
    block = f"{begin}\n\nCommand: `{command}`\n\n{markdown.strip()}\n\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Accuracy table (`--budget {budget_name}`)\n\n{block}\n"
    path.write_text(text)


def run(what: str, budget_name: str, out: Path, methods: list[str] | None = None, existing_only: bool = False,
        markdown_path: Path | None = None, command: str = "") -> str:
    budget = BUDGETS[budget_name]
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device("auto")
    results: dict[str, Any] = {"machine": device_name(device), "cpu": cpu_model(), "torch": torch.__version__,
                               "budget": budget_name, "date": time.strftime("%Y-%m-%d")}
    if what in ("speed", "all"):
        results["speed"] = bench_speed(budget)
    if what in ("eval", "all"):
        results["eval"] = bench_eval(budget)
    if what in ("sweep", "all"):
        results["sweep"] = bench_sweep(budget)
    if what in ("stream", "all"):
        results["stream"] = bench_stream()
    if what in ("accuracy", "all"):
        results["accuracy"] = bench_accuracy(budget, out, methods, existing_only)
    (out / f"{what}-{budget_name}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (out / f"{what}-{budget_name}.md").write_text(markdown)
    if markdown_path is not None and "accuracy" in results:
        write_markdown_block(markdown_path, budget_name, command, render({**results, "speed": None, "eval": None,
                                                                          "sweep": None}))
    return markdown


def render(results: dict[str, Any]) -> str:
    lines = [f"Machine: {results['machine']}; torch {results['torch']}; budget {results['budget']}; "
             f"{results['date']}", ""]
    if results.get("speed"):
        s = results["speed"]
        lines += [f"| {RunConfig().method} + Conv6, Fashion-MNIST, batch {s['batch_size']}: one step function "
                  "(`run_step`) for both | value |", "|---|---|",
                  f"| training throughput (data + augmentation + model) | {s['train_images_per_s']} images/s |",
                  f"| the same step on views made beforehand (model only) | {s['model_only_images_per_s']} images/s |",
                  f"| epoch time / model-only time (spread over {s.get('repeats', 1)} interleaved blocks) | "
                  f"{s['epoch_time_ratio_to_model']}x (+/- {s.get('ratio_spread', 0) / 2:.3f}) |",
                  f"| memory format | {'channels-last' if s.get('channels_last') else 'NCHW'} |",
                  f"| data + augmentation share of a step | {100 * s['data_share_of_step']:.1f}% |",
                  f"| precision chosen by `auto` (probe fp32 / bf16 ms) | {s['precision']} "
                  f"({s['precision_probe_ms']['fp32']} / {s['precision_probe_ms']['bf16']}) |", ""]
    if results.get("eval"):
        e = results["eval"]
        sec = e["seconds"]
        lines += [f"| evaluation on {e['train_features']} train features ({e['feature_dim']}-d) | seconds |",
                  "|---|---|", f"| feature extraction (train + test) | {sec['features']} |",
                  f"| linear probe | {sec['linear_probe']} |",
                  f"| subspace projection for kNN / k-means | {sec['projection']} |", f"| kNN | {sec['knn']} |",
                  f"| k-means | {sec['kmeans']} |", f"| probe + kNN + k-means | {e['probe_knn_kmeans_seconds']} |"]
        if "knn_accuracy_exact" in e:
            lines += [f"| kNN accuracy projected / exact (random-init) | {e['knn_accuracy_projected']:.4f} / "
                      f"{e['knn_accuracy_exact']:.4f} (exact kNN took {e['knn_exact_seconds']} s) |"]
        lines.append("")
    if results.get("sweep"):
        w = results["sweep"]
        lines += [f"| sweep of {w['cells']} small cells | seconds |", "|---|---|",
                  f"| cells run by hand (`api.train`) | {w['by_hand_seconds']} |",
                  f"| the same cells through `selfsup sweep` | {w['sweep_seconds']} |",
                  f"| overhead per cell | {w['overhead_per_cell_seconds']} |",
                  f"| rerun with every cell finished (all skipped) | {w['rerun_all_finished_seconds']} |", ""]
    if results.get("stream"):
        st = results["stream"]
        lines += [f"| image folder, {st['images']} PNGs, batch {st['batch_size']} | data path images/s | "
                  "SimCLR + Conv6 step images/s |", "|---|---|---|"]
        lines += [f"| {name} | {value['data_images_per_s']} | {value['train_images_per_s']} |"
                  for name, value in st.items() if isinstance(value, dict)]
        lines.append("")
    if results.get("accuracy"):
        lines += ["| representation | backbone | linear probe | kNN | k-means NMI | k-means acc. | test rec. MSE "
                  "| images seen | s / epoch | scored on |", "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in results["accuracy"].items():
            mse = f"{r['reconstruction_mse']:.4f}" if "reconstruction_mse" in r else ""
            seen = f"{r['images_seen']:,}" if r.get("images_seen") else ""
            lines.append(f"| {name} | {r['backbone'] or ''} | {r['linear_probe']:.4f} | {r['knn']:.4f} | "
                         f"{r['kmeans_nmi']:.4f} | {r['kmeans_accuracy']:.4f} | {mse} | {seen} | "
                         f"{r.get('seconds_per_epoch', '')} | {r.get('split', 'test')} |")
        lines.append("")
    return "\n".join(lines)
