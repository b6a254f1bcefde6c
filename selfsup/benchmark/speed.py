"""Speed benchmarks: the training step against the same step on views made beforehand, evaluation time, sweep
overhead, streaming from disk. Every figure is measured in the same process as its reference."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.benchmark.budgets import reference_config
from selfsup.config import DataConfig, EvalConfig, RunConfig
from selfsup.data.cache import decision_cache
from selfsup.train.device import faster_precision, probe_step_time, resolve_device


def bench_speed(budget: dict[str, Any], repeats: int = 3) -> dict[str, Any]:
    """Images/s of the trainer's step against the same step on views made beforehand (the model-only reference),
    both through ``selfsup.train.step.run_step`` at the run's precision and memory format, interleaved step by
    step so that the machine's drifts fall on both alike; the ratio's spread over ``repeats`` blocks is reported."""
    import statistics

    config = reference_config(budget)
    device = resolve_device("auto")
    stepper = _Stepper.build(config, device)
    steps = budget["speed_steps"] * repeats
    total = 2 * steps + 2
    stepper.timed(0, total, False), stepper.timed(1, total, True)  # warm-up, untimed: the first steps allocate
    full, model = [], []
    for index in range(steps):
        full.append(stepper.timed(2 + 2 * index, total, False))
        model.append(stepper.timed(3 + 2 * index, total, True))
    block = steps // repeats
    ratios = [sum(full[i:i + block]) / sum(model[i:i + block]) for i in range(0, steps, block)]
    batch_size = config.train.batch_size
    settings = stepper.settings
    probe_ms = {"fp32": round(probe_step_time(device, False) * 1e3, 1),
                "bf16": round(probe_step_time(device, True) * 1e3, 1)}
    return {
        "steps": steps, "repeats": repeats, "batch_size": batch_size, "precision": "bf16" if settings.bf16 else "fp32",
        "channels_last": settings.channels_last, "compiled": stepper.compiled,
        "step_function": "selfsup.train.step.run_step",
        "train_images_per_s": round(batch_size * steps / sum(full), 1),
        "model_only_images_per_s": round(batch_size * steps / sum(model), 1),
        "epoch_time_ratio_to_model": round(sum(full) / sum(model), 3),
        "ratio_per_repeat": [round(r, 3) for r in ratios],
        "ratio_spread": round(max(ratios) - min(ratios), 3),
        "data_share_of_step": round(max(0.0, 1 - statistics.median(model) / statistics.median(full)), 4),
        "precision_probe_ms": probe_ms,
        # auto's choice on a CPU comes from the same probe, measured once and cached: a different verdict now
        # means the cached one was measured under other conditions (a loaded machine, an older torch build)
        "precision_probe_verdict": faster_precision(probe_ms["fp32"], probe_ms["bf16"]),
        "precision_cache": str(decision_cache()) if device.type == "cpu" else None,
    }


@dataclass
class _Stepper:
    """A training run's parts as the trainer steps them (the method, its optimizer, the batch source, the step
    settings), timing one ``run_step`` at a time."""

    config: RunConfig
    method: Any
    optimizer: Any
    source: Any
    settings: Any
    compiled: bool

    def __post_init__(self) -> None:
        self.device = self.source.dataset.images.device
        self.generator = torch.Generator(device=self.device).manual_seed(0)
        self.batches = (batch for epoch in itertools.count(1) for batch in self.source.epoch(epoch))

    @classmethod
    def build(cls, config: RunConfig, device: torch.device, mode: tuple[bool, bool, bool] | None = None,
              dataset: Any = None) -> _Stepper:
        """``mode`` (bf16, channels-last, compiled) forces a configuration; None takes what training takes
        (``auto``: the device's measurements and the compile decision for this run's length). ``dataset``: the
        training set, when it is already loaded."""
        from selfsup.api import build_method
        from selfsup.data import InMemorySource
        from selfsup.data.plan import training_data
        from selfsup.methods import MethodContext
        from selfsup.train.decisions import run_settings
        from selfsup.train.optim import build_optimizer
        from selfsup.train.step import StepSettings

        dataset = dataset if dataset is not None else training_data(config)
        torch.manual_seed(0)
        method = build_method(config, MethodContext(dataset.channels, dataset.image_size, len(dataset))).to(device)
        source = InMemorySource(dataset, config.train.batch_size, 0, device)
        if mode is None:
            precision, channels_last, compiled = run_settings(config, method, source, device)
            mode = (precision == "bf16", channels_last, compiled)
        bf16, channels_last, compiled = mode
        if channels_last:
            method = method.to(memory_format=torch.channels_last)
        if compiled:
            method.backbone.compile()
        settings = StepSettings(device.type, bf16, channels_last, config.optim.grad_clip)
        return cls(config, method, build_optimizer(method, config.optim), source, settings, compiled)

    def timed(self, index: int, total: int, prepared: bool) -> float:
        """Seconds of one step; ``prepared``: its batch and views made before the clock starts (model only)."""
        from selfsup.train.step import run_step

        tic = time.perf_counter()
        if prepared:
            batch = next(self.batches)
            if self.settings.channels_last:
                batch.images = batch.images.contiguous(memory_format=torch.channels_last)
            views = self.method.make_views(batch, self.generator)
            _sync(self.device)
            tic = time.perf_counter()
        else:
            batch, views = next(self.batches), None
        run_step(self.method, self.method, self.optimizer, batch, self.generator, index, total, self.config.optim.lr,
                 self.settings, views)
        _sync(self.device)
        return time.perf_counter() - tic


def speed_table(budget: dict[str, Any], steps: int | None = None) -> list[dict[str, Any]]:
    """Model-only images/s (the trainer's step on views made beforehand) in every configuration: fp32 / bf16 x
    NCHW / channels-last x eager / compiled, each on a fresh copy of the reference method; compile seconds where
    compiled. Configurations this machine cannot run (compiling without a C++ compiler) are left out."""
    from selfsup.data.plan import training_data
    from selfsup.train.device import compiler_available

    config = reference_config(budget)
    device = resolve_device("auto")
    dataset = training_data(config)  # read once for all eight configurations
    steps = steps or budget["speed_steps"]
    rows = []
    for compiled in (False, True):
        if compiled and not compiler_available(device):
            continue
        for bf16 in (False, True):
            for channels_last in (False, True):
                stepper = _Stepper.build(config, device, (bf16, channels_last, compiled), dataset)
                first = stepper.timed(0, steps + 2, True)
                stepper.timed(1, steps + 2, True)
                times = [stepper.timed(2 + i, steps + 2, True) for i in range(steps)]
                rows.append({"precision": "bf16" if bf16 else "fp32",
                             "format": "channels-last" if channels_last else "NCHW",
                             "compiled": compiled, "images_per_s": round(config.train.batch_size * steps / sum(times), 1),
                             "compile_seconds": round(max(0.0, first - min(times)), 1) if compiled else None})
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_eval(budget: dict[str, Any]) -> dict[str, Any]:
    """Evaluation time of a random-init Conv6 on Fashion-MNIST's 60k training / 10k test features."""
    from selfsup.api import inference_mode
    from selfsup.backbones import create_backbone
    from selfsup.data.plan import evaluation_splits
    from selfsup.eval import evaluate_features, extract_features, knn_accuracy

    eval_config = EvalConfig(train_limit=budget["eval_train"])
    device = resolve_device("auto")
    train_split, test_split = evaluation_splits(DataConfig(), eval_config, 0)
    torch.manual_seed(0)
    encoder = create_backbone("conv6", in_channels=1, image_size=28).to(device).eval()
    extraction = {}
    for name, setting in (("fp32", "fp32"), ("auto", eval_config.precision)):  # the same encoder both ways
        mode = inference_mode(EvalConfig(precision=setting), device, encoder, train_split)
        tic = time.perf_counter()
        train_features = extract_features(encoder, train_split, device, eval_config.extract_batch_size, True,
                                          mode.bf16, mode.channels_last)
        test_features = extract_features(encoder, test_split, device, eval_config.extract_batch_size, True,
                                         mode.bf16, mode.channels_last)
        extraction[name] = {"seconds": round(time.perf_counter() - tic, 2), "mode": str(mode)}
    result = evaluate_features(train_features, train_split.labels, test_features, test_split.labels, eval_config)
    seconds = {"features": extraction["auto"]["seconds"], **result.seconds}
    protocols = sum(result.seconds.values())
    tic = time.perf_counter()
    exact = knn_accuracy(train_features, train_split.labels, test_features, test_split.labels,
                         eval_config.knn_k, eval_config.knn_temperature)
    return {"train_features": result.features["train_size"], "feature_dim": result.features["dim"],
            "seconds": seconds, "probe_knn_kmeans_seconds": round(protocols, 2), "extraction": extraction,
            "extraction_speedup": round(extraction["fp32"]["seconds"] / extraction["auto"]["seconds"], 2),
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
    from selfsup.data import InMemorySource, load_dataset
    from selfsup.data.folders import FolderOptions, read_folder
    from selfsup.data.streaming import StreamingFolderSource
    from selfsup.methods import MethodContext
    from selfsup.train.step import StepSettings, run_step

    data = load_dataset("fashion-mnist", "train").random_subset(images, 0)
    device = resolve_device("auto")
    results: dict[str, Any] = {"images": images, "batch_size": batch_size, "image_size": 32}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (image, label) in enumerate(zip(data.images, data.labels.tolist())):
            folder = root / "train" / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
        options = FolderOptions(32, 3)
        sources = {"in-memory": InMemorySource(read_folder(root, "train", options), batch_size, 0, device)}
        for workers in (0, 1, 2):
            sources[f"stream, {workers} workers"] = StreamingFolderSource(root, options, batch_size, 0, device,
                                                                          workers=workers)
        config = reference_config({"limit": images, "epochs": 1}).replace({"dataset": "image-folder"})
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
