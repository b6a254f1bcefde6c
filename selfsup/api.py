"""The Python API: ``train``, ``load``, ``evaluate_run``, ``baseline``. The CLI is a thin layer over it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from selfsup.augment import ViewAugment
from selfsup.backbones import create_backbone
from selfsup.config import EvalConfig, RunConfig
from selfsup.data import DATASETS, ImageDataset, InMemorySource, to_float
from selfsup.data.cache import decision_cache
from selfsup.data.catalog import folder_options
from selfsup.data.plan import RUN_LOG, DataPlan, evaluation_splits, split_description, training_data
from selfsup.errors import CheckpointError, ConfigError
from selfsup.eval import Evaluation, evaluate_embedding
from selfsup.eval.monitor import OnlineMonitor
from selfsup.eval.plots import plot_eigenspace, plot_image_rows, plot_loss, plot_monitor
from selfsup.methods import Method, MethodContext, get_method
from selfsup.ops import distributed
from selfsup.train import CollapseError, Trainer, TrainResult, resolve_device, resolve_precision
from selfsup.train.checkpoint import BEST, has_checkpoint, load_best, load_checkpoint, load_model_state
from selfsup.train.decisions import run_settings
from selfsup.train.device import (
    InferenceMode,
    resolve_inference,
)
from selfsup.train.rundir import (
    RunDirectoryError,
    RunLock,
    prepare_run_dir,
    read_metrics,
    read_run_config,
    write_json,
)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path | None
    method: Method
    train: TrainResult
    eval: Evaluation | None


def setup_device(config: RunConfig) -> torch.device:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    return resolve_device(config.train.device)


def build_method(config: RunConfig, context: MethodContext) -> Method:
    """The method of ``config`` with a fresh backbone; a model too large to allocate is a ConfigError."""
    backbone = create_backbone(config.backbone, in_channels=context.in_channels, image_size=context.image_size)
    method_cls = get_method(config.method)
    try:
        return method_cls(backbone, config.params, ViewAugment(config.augment), context)
    except (MemoryError, RuntimeError) as error:  # a width or code size no machine holds: the input's mistake
        if not isinstance(error, MemoryError) and "allocate" not in str(error):
            raise
        raise ConfigError(f"the {config.method} model with params {config.params} does not fit in memory "
                          f"({str(error).splitlines()[0][:160]}); use smaller sizes (latent_dim, projection widths)"
                          ) from None


def resolve_config(method: str, recipe: str | None = None, file: str | Path | None = None,
                   options: dict[str, Any] | None = None, sets: dict[str, Any] | None = None) -> RunConfig:
    """``RunConfig.resolve`` (the recipe, a config file, options, ``--set``: later wins), then a data folder given
    without a dataset name read as what it holds (``detect_dataset``: an image folder, or a dataset's files; the
    log says so); a folder holding neither is refused. The command line builds every run's config with this."""
    from selfsup.config import option_overrides, resolve_key
    from selfsup.data.catalog import detect_dataset

    config = RunConfig.resolve(method, recipe, file, options, sets)
    named = {resolve_key(key, type(config.params)) for key in [*option_overrides(options), *(sets or {})]
             if key not in ("method", "backbone", "recipe")}
    if config.data.data_dir is None or ("data", "dataset") in named:
        return config
    folder = Path(config.data.data_dir)
    detected = detect_dataset(folder)
    if detected is None:
        state = "does not exist" if not folder.exists() else "holds no images and no files of a dataset selfsup reads"
        raise ConfigError(f"--data-dir {folder} {state}; name the dataset with --dataset (see `selfsup datasets`)")
    RUN_LOG.info("--data-dir %s without --dataset: read as %s", folder, detected)
    return config.replace({"data.dataset": detected}) if detected != config.data.dataset else config


def train(config: RunConfig | str, out: str | Path | None = None, resume: bool = False, evaluate: bool = True,
          progress: bool = True, on_monitor: Any = None, recipe: str | None = None, file: str | Path | None = None,
          sets: dict[str, Any] | None = None, **options: Any) -> RunResult:
    """Train ``config`` (writing a run directory at ``out`` when given), then evaluate unless told not to.
    ``config`` may be a method's name, resolved as the command line does (``resolve_config``) with ``recipe``,
    ``file``, ``sets`` and the command line's options as keywords: ``train("simclr", data_dir=..., epochs=5)`` is
    ``selfsup train simclr --data-dir ... --epochs 5``. ``on_monitor(step, total_steps, validation_knn)`` is called
    after each online-monitor measurement.

    Under ``torchrun`` every process calls this; each trains on its shard of every global batch
    (``train.batch_size`` is the global batch), and only rank 0 writes the run directory and evaluates.
    """
    if isinstance(config, str):
        config = resolve_config(config, recipe, file, options, sets)
    elif recipe is not None or file is not None or sets or options:
        raise ConfigError("train(config, ...): recipe, file, sets and options go with a method's name, not a RunConfig "
                          "(use config.replace({...}))")
    config = config.anchored()  # the run's config.yaml is read again from other working folders
    rank, world = distributed.init_from_env(config.train.device)
    if config.train.batch_size % world:
        raise ConfigError(f"train.batch_size {config.train.batch_size} is the global batch and must be divisible by "
                          f"the number of processes, {world}")
    device = distributed.local_device(setup_device(config))
    plan = DataPlan(config.data)  # each split read once: training, the online monitor and the evaluation share it
    if config.train.keep_best and (reason := monitor_off(config, plan)) is not None:
        # a recipe's keep_best (simsiam's) meets unlabelled images as often as a user's choice does: say so, go on
        RUN_LOG.warning("train.keep_best keeps the online monitor's best weights, and this run has no monitor (%s): "
                        "its last weights are evaluated", reason)
        config = config.replace({"train.keep_best": False, "train.patience": 0})
    if config.data.stream:
        source: Any = streaming_source(config, device, rank, world)
        context = MethodContext(source.channels, source.size, len(source))
    else:  # before the run directory: a missing dataset leaves nothing behind
        dataset = training_data(config, plan)
        context = MethodContext(dataset.channels, dataset.image_size, len(dataset))
        source = InMemorySource(dataset, config.train.batch_size, config.train.seed, device, rank, world)
    torch.manual_seed(config.train.seed)  # the initial weights are part of what the seed fixes
    method = build_method(config, context)  # a model that cannot be built (decoder shapes) leaves nothing behind
    run_dir = Path(out) if out is not None else None
    lock = RunLock(run_dir) if run_dir is not None and rank == 0 else None
    if lock is not None:
        lock.acquire()  # a directory another process trains into is refused before anything is written
    try:
        return _train_into(config, run_dir, lock, resume, evaluate, progress, method, source, device, rank, world,
                           plan, on_monitor)
    finally:
        if lock is not None:
            lock.release()


def _train_into(config: RunConfig, run_dir: Path | None, lock: RunLock | None, resume: bool, evaluate: bool,
                progress: bool, method: Method, source: Any, device: torch.device, rank: int, world: int,
                plan: DataPlan, on_monitor: Any = None) -> RunResult:
    """The rest of ``train`` once the data and the model are built, with the run directory locked."""
    has_checkpoint = _prepare_on_rank0(run_dir, config, resume) if run_dir is not None else False
    if lock is not None:
        lock.acquire()  # a directory created just now
    method.attach_data(source.dataset)
    precision, channels_last, compiled = run_settings(config, method.to(device), source, device)
    if compiled:
        method.backbone.compile()  # in place: the state dict keeps its keys, the EMA target stays a plain copy
    log.info("device %s, precision %s, channels-last %s, compiled %s, %d training images, process %d of %d", device,
             precision, channels_last, compiled, method.context.num_examples, rank + 1, world)
    monitor = online_monitor(config, device, precision == "bf16", channels_last, plan) if rank == 0 else None
    trainer = Trainer(method, source, config, device, precision, run_dir, progress, channels_last, monitor, on_monitor)
    if has_checkpoint:
        assert run_dir is not None
        trainer.load(run_dir / "checkpoints" / "last.pt")
        log.info("resumed from step %d", trainer.step)
    try:
        result = trainer.fit()
    except CollapseError as error:  # eval.json says the run collapsed, and where (report and compare read it)
        if run_dir is not None and rank == 0:
            write_json(run_dir / "eval.json", Evaluation(collapsed=error.record, config=config.to_dict()).to_dict())
        raise
    if rank != 0:  # rank 0 plots and evaluates
        return RunResult(None, method, result, None)
    if run_dir is not None:
        _plot_run(run_dir, config, method, source.dataset, trainer, result.steps)
    if trainer.logger is not None:
        trainer.logger.close()
    evaluation = None
    if evaluate and _evaluable(config, source.dataset, run_dir):
        evaluation = evaluate_method(method, config, device, progress, precision, plan)
        evaluation.training = {"seconds": round(result.seconds, 2), "steps": result.steps,
                               "images_seen": result.steps * config.train.batch_size,
                               "images_per_s": round(result.images_per_second, 1), "precision": precision,
                               "channels_last": channels_last, "compiled": compiled,
                               "device": str(device), **monitor_cost(monitor, result.seconds),
                               **kept_record(result)}
        if run_dir is not None:
            write_json(run_dir / "eval.json", evaluation.to_dict())
    return RunResult(run_dir, method, result, evaluation)


def _plot_run(run_dir: Path, config: RunConfig, method: Method, dataset: ImageDataset | None, trainer: Trainer,
              steps: int) -> None:
    """plots/: the loss, the eigenspace tracking, the monitor and (methods that reconstruct) reconstructions."""
    metrics = read_metrics(run_dir)
    title = f"{config.method} / {config.backbone}"
    plot_loss(metrics, run_dir / "plots" / "loss.png", title)
    plot_eigenspace(metrics, run_dir / "plots" / "eigenspace.png", title)
    plot_monitor(metrics, run_dir / "plots" / "monitor.png", title)
    if method.reconstructs and dataset is not None:
        path = plot_reconstructions(method, dataset, run_dir / "plots" / "reconstructions.png", title,
                                    config.train.seed)
        if trainer.logger is not None:
            trainer.logger.image("reconstructions", path, steps)


def _evaluable(config: RunConfig, dataset: ImageDataset | None, run_dir: Path | None) -> bool:
    """False (with the command to run) for unlabeled or one-class training images and no labelled folder to evaluate
    on."""
    if config.data.eval_data_dir is not None or dataset is None:
        return True
    if bool((dataset.labels < 0).all()):
        log.warning("the training images have no labels, so the run was not evaluated; evaluate it on a labelled "
                    "folder: selfsup eval %s --set data.eval_data_dir=FOLDER", run_dir or "RUN")
        return False
    if len(dataset.classes) == 1:  # the folder's classes, not those data.classes kept: evaluation scores them all
        log.warning("the training images are one class (%s), so the run was not evaluated (every score would be 1); "
                    "evaluate it on a folder of two or more classes: selfsup eval %s --set data.eval_data_dir=FOLDER",
                    dataset.classes[0], run_dir or "RUN")
        return False
    return True


def online_monitor(config: RunConfig, device: torch.device, bf16: bool, channels_last: bool = False,
                   plan: DataPlan | None = None) -> OnlineMonitor | None:
    """The run's online monitor: a fixed bank of labelled training images and a fixed subset of the validation
    split (never the test split); None when switched off, or without a validation split or labels."""
    plan = plan or DataPlan(config.data)
    reason = monitor_off(config, plan)
    if reason is not None:
        if config.monitor.enabled:
            RUN_LOG.info("online monitor off: %s", reason)
        return None
    splits = plan.labelled(with_test=False)
    assert splits.val is not None  # monitor_off checked it
    return OnlineMonitor(splits.fit.to(device), splits.val.to(device), config.monitor, config.eval, device, bf16,
                         seed=config.data.val_seed, channels_last=channels_last)


def monitor_off(config: RunConfig, plan: DataPlan) -> str | None:
    """Why this run can have no online monitor, or None when it can."""
    if not config.monitor.enabled:
        return "monitor.enabled is false"
    if config.data.stream:
        return "it needs an in-memory dataset (data.stream is on)"
    splits = plan.labelled(with_test=False)
    if splits.val is None or bool((splits.val.labels < 0).any()):
        return ("no labelled validation split (data.val_size resolved to 0: unlabeled images, or a class with under "
                "20 images; set data.val_size=N to hold some out)")
    return None


def kept_record(result: TrainResult) -> dict[str, Any]:
    """eval.json's note of train.keep_best: which measurement's weights were evaluated, and an early stop."""
    if result.kept is None:
        return {}
    return {"kept_best": result.kept, "stopped_early": result.stopped_early}


def monitor_cost(monitor: OnlineMonitor | None, training_seconds: float) -> dict[str, Any]:
    """The monitor's time beside the training time it was kept out of (eval.json's "training")."""
    if monitor is None:
        return {}
    return {"monitor_seconds": round(monitor.seconds, 2), "monitor_measurements": monitor.measurements,
            "monitor_share": round(monitor.seconds / max(training_seconds, 1e-9), 4)}


def streaming_source(config: RunConfig, device: torch.device, rank: int = 0, world: int = 1) -> Any:
    """The training split of an image folder, decoded from disk batch by batch (``data.stream``)."""
    from selfsup.data.catalog import locate
    from selfsup.data.streaming import StreamingFolderSource

    spec = DATASETS.get(config.data.dataset)
    if not spec.configurable:
        raise ConfigError(f"data.stream reads image folders (--dataset image-folder), not {config.data.dataset!r}; "
                          "the other datasets fit in memory")
    options = folder_options(config.data)
    assert options is not None
    folder = locate(spec, config.data.data_dir, False)
    return StreamingFolderSource(folder, options, config.train.batch_size, config.train.seed, device, rank, world,
                                 config.data.workers)


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


def inference_mode(eval_config: EvalConfig, device: torch.device, module: nn.Module, dataset: ImageDataset,
                   train_precision: str = "fp32") -> InferenceMode:
    """How ``module`` extracts features of ``dataset``'s images on ``device`` (eval.precision: auto measures it),
    with ``module`` converted to that mode's memory format."""
    mode = resolve_inference(eval_config.precision, device, module, (dataset.channels, dataset.image_size,
                                                                      dataset.image_size),
                             decision_cache(), train_precision)
    mode.prepare(module)
    return mode


def evaluate_method(method: Method, config: RunConfig, device: torch.device, progress: bool = True,
                    precision: str | None = None, plan: DataPlan | None = None) -> Evaluation:
    """Every protocol on ``method``'s frozen features; extracted at the run's ``precision`` (resolved again when
    not given) unless ``eval.precision=fp32``."""
    splits = evaluation_splits(config.data, config.eval, config.train.seed, plan)
    train_split, test_split = splits
    trained_on = (method.context.in_channels, method.context.image_size)
    if (train_split.channels, train_split.image_size) != trained_on:
        raise ConfigError(f"the model was trained on {trained_on[0]}x{trained_on[1]}px images, but the evaluation data "
                          f"({splits.data['dataset']} from {splits.data['source']}) is {train_split.channels}x"
                          f"{train_split.image_size}px; evaluate on data of the training shape (was config.yaml "
                          "edited?)")
    if precision is None:
        precision = resolve_precision(config.train.precision, device, decision_cache())
    mode = inference_mode(config.eval, device, method, train_split, precision)
    method.eval()
    try:
        result = evaluate_embedding(method.embed, train_split, test_split, config.eval, device, config.train.seed,
                                    progress, mode.bf16, mode.channels_last)
        result.split = split_description(config.data, config.eval, splits)
        result.data = splits.data
        result.config = config.to_dict()  # what these numbers belong to (report and bench check it)
        if method.reconstructs:
            result.reconstruction = reconstruction_error(method, test_split, device, config.eval.extract_batch_size)
        return result
    finally:
        method.train()


def reconstruction_error(method: Method, dataset: ImageDataset, device: torch.device,
                         batch_size: int = 1024) -> dict[str, Any]:
    """Mean squared error per pixel (images in [0, 1]) of reconstructing every image of ``dataset``."""
    errors = image_errors(method, dataset, device, batch_size)
    return {"mse": float(errors.mean()), "split": dataset.name or "test", "images": len(dataset)}


def image_errors(method: Method, dataset: ImageDataset, device: torch.device, batch_size: int = 1024
                 ) -> torch.Tensor:
    """(N,) per-image reconstruction errors, in order, on the CPU."""
    return torch.cat([method.image_errors(batch.to(device)).float().cpu()
                      for batch in dataset.float_batches(batch_size)])


def plot_reconstructions(method: Method, dataset: ImageDataset, path: Path, title: str, seed: int = 0,
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
    return plot_image_rows(rows, path, title)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> Method:
    """The trained method of a run directory, in eval mode; ``.embed(images)`` gives its representation. A run
    trained with ``train.keep_best`` gives the weights of its best online-monitor measurement (checkpoints/best.pt)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    if not has_checkpoint(checkpoint_path):
        raise RunDirectoryError(f"{run_dir} has no checkpoint (checkpoints/last.pt); was it trained?")
    if config.train.keep_best:  # the weights of the online monitor's best measurement
        checkpoint_path = run_dir / "checkpoints" / BEST
        state = load_best(checkpoint_path, device)
    else:
        state = load_checkpoint(checkpoint_path, device)
    try:
        # the checkpoint's data context; a trained run is loaded to be used, so training-only inputs (nn-byol's
        # neighbour file) are not read: a run stays evaluable after they move
        context = MethodContext(**{**state["context"], "training": False})
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{checkpoint_path} is not a selfsup checkpoint (no data context: {error})") from None
    method = build_method(config, context)
    load_model_state(method, state, checkpoint_path, config.to_dict())
    return method.to(device).eval()


def evaluate_run(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> tuple[Evaluation, Path]:
    """Evaluate a trained run on its ``eval.split`` (or the one in ``overrides``); writes ``eval.json``, or
    ``eval-<split>.json`` when the split is not the run's own. Returns the evaluation and the file written."""
    run_dir = Path(run_dir)
    trained = read_run_config(run_dir)
    config = trained.replace(overrides) if overrides else trained
    device = setup_device(config)
    method = load(run_dir, device)
    evaluation = evaluate_method(method, config, device)
    collapses = [record for record in read_metrics(run_dir) if record.get("event") == "collapsed"]
    if collapses:  # the figures are those of the checkpoint from before the collapse
        evaluation.collapsed = {key: value for key, value in collapses[-1].items() if key not in ("event", "epoch")}
    name = "eval.json" if config.eval.split == trained.eval.split else f"eval-{config.eval.split}.json"
    write_json(run_dir / name, evaluation.to_dict())
    return evaluation, run_dir / name
