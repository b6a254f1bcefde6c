"""The Python API: ``train``, ``load``, ``evaluate_run``, ``baseline``. The CLI is a thin layer over it."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from selfsup.augment import ViewAugment
from selfsup.backbones import create_backbone
from selfsup.config import ConfigError, EvalConfig, RunConfig
from selfsup.data import DATASETS, ImageDataset, InMemorySource, load_dataset, to_float
from selfsup.data.catalog import cache_root
from selfsup.eval import evaluate_embedding
from selfsup.experiments.plots import plot_eigenspace, plot_image_rows, plot_loss
from selfsup.experiments.rundir import (
    RunDirectoryError,
    prepare_run_dir,
    read_metrics,
    read_run_config,
    write_json,
)
from selfsup.methods import Method, MethodContext, get_method
from selfsup.methods.autoencoder import AutoencoderBase
from selfsup.train import Trainer, TrainResult, distributed, resolve_device, resolve_precision
from selfsup.train.checkpoint import load_checkpoint
from selfsup.train.device import method_step_timer, resolve_channels_last

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path | None
    method: Method
    train: TrainResult
    eval: dict[str, Any] | None


def _setup(config: RunConfig) -> torch.device:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    return resolve_device(config.train.device)


def training_data(config: RunConfig) -> ImageDataset:
    spec = DATASETS.get(config.data.dataset)
    dataset = load_dataset(spec.name, spec.train_split, config.data.data_dir, config.data.download)
    if config.data.classes is not None:
        keep = torch.isin(dataset.labels, torch.tensor(config.data.classes))
        if not keep.any():
            raise ConfigError(f"data.classes {list(config.data.classes)}: no {spec.name} training image has these "
                              f"labels (it has {len(dataset.classes)} classes)")
        dataset = dataset.subset(keep.nonzero().squeeze(1))
    if config.data.limit is not None:
        dataset = dataset.random_subset(config.data.limit, config.train.seed)
    return dataset


def build_method(config: RunConfig, context: MethodContext) -> Method:
    backbone = create_backbone(config.backbone, in_channels=context.in_channels, image_size=context.image_size)
    method_cls = get_method(config.method)
    return method_cls(backbone, config.params, ViewAugment(config.augment), context)


def train(config: RunConfig, out: str | Path | None = None, resume: bool = False, evaluate: bool = True,
          progress: bool = True) -> RunResult:
    """Train ``config`` (writing a run directory at ``out`` when given), then evaluate unless told not to.

    Under ``torchrun`` every process calls this; each trains on its shard of every global batch
    (``train.batch_size`` is the global batch), and only rank 0 writes the run directory and evaluates.
    """
    rank, world = distributed.init_from_env(config.train.device)
    if config.train.batch_size % world:
        raise ConfigError(f"train.batch_size {config.train.batch_size} is the global batch and must be divisible by "
                          f"the number of processes, {world}")
    device = distributed.local_device(_setup(config))
    if config.data.stream:
        source: Any = streaming_source(config, device, rank, world)
        context = MethodContext(source.channels, source.size, len(source))
    else:  # before the run directory: a missing dataset leaves nothing behind
        dataset = training_data(config)
        context = MethodContext(dataset.channels, dataset.image_size, len(dataset))
        source = InMemorySource(dataset, config.train.batch_size, config.train.seed, device, rank, world)
    torch.manual_seed(config.train.seed)  # the initial weights are part of what the seed fixes
    method = build_method(config, context)  # a model that cannot be built (decoder shapes) leaves nothing behind
    run_dir = Path(out) if out is not None else None
    has_checkpoint = _prepare_on_rank0(run_dir, config, resume) if run_dir is not None else False
    method.attach_data(source.dataset)
    precision = _training_precision(config, method.to(device), source, device)
    channels_last = resolve_channels_last(config.train.channels_last, device, cache_root() / "precision.json")
    log.info("device %s, precision %s, channels-last %s, %d training images, process %d of %d", device, precision,
             channels_last, context.num_examples, rank + 1, world)
    trainer = Trainer(method, source, config, device, precision, run_dir, progress, channels_last)
    if has_checkpoint:
        assert run_dir is not None
        trainer.load(run_dir / "checkpoints" / "last.pt")
        log.info("resumed from step %d", trainer.step)
    result = trainer.fit()
    evaluation = None
    if rank != 0:  # rank 0 plots and evaluates
        return RunResult(None, method, result, None)
    if run_dir is not None:
        metrics = read_metrics(run_dir)
        plot_loss(metrics, run_dir / "plots" / "loss.png", f"{config.method} / {config.backbone}")
        plot_eigenspace(metrics, run_dir / "plots" / "eigenspace.png", f"{config.method} / {config.backbone}")
        if isinstance(method, AutoencoderBase) and not config.data.stream:
            plot_reconstructions(method, dataset, run_dir / "plots" / "reconstructions.png", config.train.seed)
    if evaluate:
        evaluation = evaluate_method(method, config, device, progress)
        evaluation["training"] = {"seconds": round(result.seconds, 2), "steps": result.steps,
                                  "images_per_s": round(result.images_per_second, 1), "precision": precision,
                                  "device": str(device)}
        if run_dir is not None:
            write_json(run_dir / "eval.json", evaluation)
    return RunResult(run_dir, method, result, evaluation)


def _training_precision(config: RunConfig, method: Method, source: Any, device: torch.device) -> str:
    """The run's precision: on a GPU ``auto`` times this run's own step in fp32 and bf16 (once per workload);
    under several processes rank 0 decides for all."""
    step_time = None
    if config.train.precision == "auto" and device.type == "cuda" and distributed.rank() == 0:
        batch = next(iter(source.epoch(0)))
        step_time = method_step_timer(method, batch, device, shared=(source.dataset,))
    workload = (f"{config.method}|{config.backbone}|{method.context.in_channels}x{method.context.image_size}|"
                f"batch {config.train.batch_size}")
    choice = None
    if distributed.rank() == 0:
        choice = resolve_precision(config.train.precision, device, cache_root() / "precision.json", step_time,
                                   workload)
    return str(distributed.broadcast_object(choice))


def streaming_source(config: RunConfig, device: torch.device, rank: int = 0, world: int = 1) -> Any:
    """The training split of an image folder, decoded from disk batch by batch (``data.stream``)."""
    from selfsup.data.catalog import IMAGE_FOLDER_SIZE, locate
    from selfsup.data.streaming import StreamingFolderSource

    if config.data.dataset != "image-folder":
        raise ConfigError(f"data.stream reads image folders (--dataset image-folder), not {config.data.dataset!r}; "
                          "the other datasets fit in memory")
    folder = locate(DATASETS.get("image-folder"), config.data.data_dir, False)
    root = folder / "train" if (folder / "train").is_dir() else folder
    return StreamingFolderSource(root, IMAGE_FOLDER_SIZE, 3, config.train.batch_size, config.train.seed, device,
                                rank, world, config.data.workers)


def _prepare_on_rank0(run_dir: Path, config: RunConfig, resume: bool) -> bool:
    """``prepare_run_dir`` on rank 0; its answer (or its refusal) on every process."""
    answer: tuple[bool, str | None] = (False, None)
    if distributed.rank() == 0:
        try:
            answer = (prepare_run_dir(run_dir, config, resume), None)
        except RunDirectoryError as error:
            answer = (False, str(error))
    has_checkpoint, error = distributed.broadcast_object(answer)  # type: ignore[misc]
    if error is not None:
        raise RunDirectoryError(error)
    return has_checkpoint


def evaluation_splits(dataset: str, data_dir: str | None, download: bool, eval_config: EvalConfig,
                      seed: int) -> tuple[ImageDataset, ImageDataset]:
    """The labelled training split and the test split, optionally limited to fixed random subsets."""
    train_split = load_dataset(dataset, "train", data_dir, download)
    test_split = load_dataset(dataset, "test", data_dir, download)
    if eval_config.train_limit is not None:
        train_split = train_split.random_subset(eval_config.train_limit, seed)
    if eval_config.test_limit is not None:
        test_split = test_split.random_subset(eval_config.test_limit, seed)
    return train_split, test_split


def evaluate_method(method: Method, config: RunConfig, device: torch.device, progress: bool = True
                    ) -> dict[str, Any]:
    train_split, test_split = evaluation_splits(config.data.dataset, config.data.data_dir, config.data.download,
                                                config.eval, config.train.seed)
    method.eval()
    try:
        result = evaluate_embedding(method.embed, train_split, test_split, config.eval, device, config.train.seed,
                                    progress)
        if isinstance(method, AutoencoderBase):
            result["reconstruction"] = reconstruction_error(method, test_split, device, config.eval.extract_batch_size)
        return result
    finally:
        method.train()


def reconstruction_error(method: AutoencoderBase, dataset: ImageDataset, device: torch.device,
                         batch_size: int = 1024) -> dict[str, Any]:
    """Mean squared error per pixel (images in [0, 1]) of reconstructing every image of ``dataset``."""
    errors = image_errors(method, dataset, device, batch_size)
    return {"mse": float(errors.mean()), "split": dataset.name or "test", "images": len(dataset)}


def image_errors(method: AutoencoderBase, dataset: ImageDataset, device: torch.device, batch_size: int = 1024
                 ) -> torch.Tensor:
    """(N,) per-image reconstruction errors, in order, on the CPU."""
    return torch.cat([method.image_errors(batch.to(device)).float().cpu()
                      for batch in dataset.float_batches(batch_size)])


def plot_reconstructions(method: AutoencoderBase, dataset: ImageDataset, path: Path, seed: int = 0,
                         count: int = 10) -> Path:
    """plots/reconstructions.png: the first images of ``dataset``, their corrupted inputs (if any), outputs."""
    device = next(method.parameters()).device
    was_training = method.training
    method.eval()
    try:
        images = to_float(dataset.images[:count]).to(device)
        rows = method.reconstruction_examples(images, torch.Generator(device=device).manual_seed(seed))
    finally:
        method.train(was_training)
    return plot_image_rows(rows, path, f"{method.name} / {getattr(method.backbone, 'backbone_name', '')}")


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> Method:
    """The trained method of a run directory, in eval mode; ``.embed(images)`` gives its representation."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    if not checkpoint_path.exists():
        raise RunDirectoryError(f"{run_dir} has no checkpoint (checkpoints/last.pt); was it trained?")
    state = load_checkpoint(checkpoint_path, device)
    context = MethodContext(**state["context"])
    method = build_method(config, context)
    method.load_state_dict(state["model"])
    return method.to(device).eval()


def evaluate_run(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate a trained run on its dataset's test split and write ``eval.json``."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if overrides:
        config = config.replace(overrides)
    device = _setup(config)
    method = load(run_dir, device)
    evaluation = evaluate_method(method, config, device)
    write_json(run_dir / "eval.json", evaluation)
    return evaluation


class RawPixels(nn.Module):
    """The identity representation: flattened pixels in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def baseline(dataset: str = "fashion-mnist", backbone: str = "conv6", out: str | Path | None = None,
             data_dir: str | None = None, seed: int = 0, eval_config: EvalConfig | None = None,
             download: bool = True) -> dict[str, dict[str, Any]]:
    """Raw pixels and a random-init ``backbone`` under the same protocols; writes ``<out>/<name>/eval.json``."""
    eval_config = eval_config or EvalConfig()
    device = resolve_device("auto")
    train_split, test_split = evaluation_splits(dataset, data_dir, download, eval_config, seed)
    torch.manual_seed(seed)
    encoders: dict[str, nn.Module] = {
        "raw-pixels": RawPixels(),
        "random-init": create_backbone(backbone, in_channels=train_split.channels, image_size=train_split.image_size),
    }
    results = {}
    for name, encoder in encoders.items():
        encoder = encoder.to(device).eval()
        tic = time.perf_counter()
        result = evaluate_embedding(encoder, train_split, test_split, eval_config, device, seed)
        result["baseline"] = {"name": name, "dataset": dataset, "backbone": backbone if name != "raw-pixels" else None,
                              "seconds": round(time.perf_counter() - tic, 2),
                              "eval": dataclasses.asdict(eval_config)}
        results[name] = result
        if out is not None:
            write_json(Path(out) / name / "eval.json", result)
    return results
