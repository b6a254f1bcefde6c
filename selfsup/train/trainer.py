"""One model-agnostic training loop. Nothing here knows which method it trains.

The method is a module whose call is the step, ``method(batch, generator) -> StepOutput``, with
``begin_step``/``after_optimizer_step`` hooks around it (``train/step.run_step`` runs them); the trainer owns
optimizer, schedule, precision, clipping, checkpoints, resume, signals, logging and the progress bar.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from selfsup.config import RunConfig
from selfsup.data import BatchSource
from selfsup.errors import CheckpointError, CollapseError, ConfigError, DivergenceError, TrainingInterrupted
from selfsup.ops import distributed
from selfsup.ops.schedules import stage_bounds, warmup_cosine, warmup_steps
from selfsup.ops.signals import stop_signals
from selfsup.train.checkpoint import BEST, load_best, load_checkpoint, load_model_state, save_atomic, write_atomic
from selfsup.train.loggers import make_logger
from selfsup.train.optim import build_optimizer
from selfsup.train.rundir import parse_metrics
from selfsup.train.step import StepSettings, run_step

if TYPE_CHECKING:
    from selfsup.methods import Method

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    steps: int
    epochs: int
    final_loss: float
    seconds: float  # training time of this process (resumed runs add up their parts)
    images_per_second: float
    # train.keep_best: the monitor measurement whose weights the method holds now (step, epoch, monitor_knn), and
    # whether train.patience stopped the run before its last step
    kept: dict[str, Any] | None = None
    stopped_early: bool = False


def best_so_far(values: list[float]) -> tuple[int, int]:
    """train.keep_best's rule: the index of the best of ``values`` (the first of equal ones: ties keep the earlier
    weights) and how many measurements came after it without beating it (what train.patience counts)."""
    best = max(range(len(values)), key=lambda index: (values[index], -index))
    return best, len(values) - 1 - best


def kept_measurement(values: list[float], patience: int) -> tuple[int, int | None]:
    """What train.keep_best and train.patience do with a run's sequence of monitor measurements (one before the
    first step, then one per epoch end): the index of the kept one and the index after which patience stops the run
    (None: it trains to the end). The trainer applies best_so_far to its measurements as it goes."""
    for end in range(1, len(values)):  # the run goes on after measurement end - 1 only while patience lasts
        best, since = best_so_far(values[:end])
        if patience and since >= patience:
            return best, end - 1
    return best_so_far(values)[0], None


def _step_of(record: dict[str, Any]) -> float:
    step = record.get("step", 0)
    return step if isinstance(step, (int, float)) else 0


class Trainer:
    def __init__(self, method: Method, source: BatchSource, config: RunConfig, device: torch.device,
                 precision: str = "fp32", run_dir: Path | None = None, progress: bool = True,
                 channels_last: bool = False, monitor: Any = None,
                 on_monitor: Callable[[int, int, float], None] | None = None) -> None:
        self.channels_last = channels_last
        # the online monitor (selfsup.eval.monitor.OnlineMonitor or anything with measure(method) and levels())
        self.monitor = monitor if distributed.rank() == 0 else None
        # called with (step, total steps, validation kNN) after each monitor measurement: `selfsup tune` reports it to
        # its pruner, which may stop the run by raising
        self.on_monitor = on_monitor
        self.method = method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0  # only rank 0 writes logs and checkpoints
        self.model: torch.nn.Module = self.method
        if self.world > 1:
            if device.type == "cuda":  # batch statistics over the global batch (SyncBatchNorm needs a GPU)
                self.method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
            # staged methods freeze layers stage by stage: their frozen parameters get no gradient
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.method, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=method.num_stages > 1)
        self.source = source
        self.config = config
        self.device = device
        self.bf16 = precision == "bf16"
        self.run_dir = run_dir
        self.progress = progress
        self.optimizer = build_optimizer(self.method, config.optim)
        self.steps_per_epoch = source.steps_per_epoch
        self.total_steps = config.train.epochs * self.steps_per_epoch
        warmup = warmup_steps(config.optim, self.steps_per_epoch, self.total_steps)
        # staged methods (layer-wise training): one warm-up + cosine per stage, fresh optimizer state at each start
        self.stage_starts = stage_bounds(self.total_steps, method.num_stages)
        self.lr_schedule = np.concatenate([
            warmup_cosine(config.optim.lr, end - start, min(warmup, end - start),
                          config.optim.lr * config.optim.min_lr_ratio, constant=config.optim.schedule == "constant")
            for start, end in zip(self.stage_starts[:-1], self.stage_starts[1:]) if end > start])
        # each process draws its own augmentations; rank 0's stream is the single-process one
        self.generator = torch.Generator(device=device).manual_seed(config.train.seed + 1_000_003 * self.rank)
        self.step = 0
        self.seconds = 0.0
        self.last_loss = math.nan  # the latest step's loss, kept in checkpoints
        self.step_settings = StepSettings(device.type, self.bf16, channels_last, config.optim.grad_clip)
        self._stop_signal: int | None = None
        self._status: dict[str, str] = {}  # the progress bar's postfix
        # train.keep_best: every monitor measurement ({step, epoch, monitor_knn}; the best and the count since it are
        # derived from them, best_so_far) and the best one's weights (a CPU copy, also written to
        # checkpoints/best.pt when there is a run directory)
        self.measurements: list[dict[str, Any]] = []
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._stopping = False  # train.patience has run out (the same on every process)
        self.logger = make_logger(config.train.logger, run_dir) if self.is_main else None

    # -- checkpoints ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / BEST

    def state_dict(self, finished: bool = False) -> dict[str, Any]:
        return {
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
            "generators": [g.cpu() for g in distributed.gather_objects(self.generator.get_state().cpu())],
            "world_size": self.world,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "seconds": self.seconds,
            "last_loss": self.last_loss,
            "measurements": self.measurements,
            "config": self.config.to_dict(),
            # the data the model was built for (how it was built, training or loaded for use, is not saved)
            "context": self._context(),
            "finished": finished,
        }

    def save(self, finished: bool = False) -> None:
        """Collective under several processes (the generators are gathered); rank 0 writes."""
        if self.checkpoint_path is not None:
            state = self.state_dict(finished)
            if self.is_main:
                save_atomic(state, self.checkpoint_path, keep_previous=True)
            distributed.barrier()

    def load(self, path: Path) -> None:
        state = load_checkpoint(path, self.device)
        written_by = state.get("world_size", 1)
        if written_by != self.world:
            raise ConfigError(f"{path} was written by {written_by} process(es) and this run has {self.world}; "
                              f"resume with the same number (torchrun --nproc_per_node {written_by}), since the "
                              "data shards and augmentation streams depend on it")
        load_model_state(self.method, state, path, self.config.to_dict())
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{path}: its optimizer state does not fit this run's optimizer ({error}); was "
                                  "config.yaml edited?") from None
        try:
            self.step = int(state["step"])
            if not 0 <= self.step <= self.total_steps:
                raise ValueError(f"step {self.step} is outside this run's 0..{self.total_steps}")
            generator = state["generators"][self.rank] if "generators" in state else state["generator"]
            # RNG states are CPU byte tensors whatever the generator's device; map_location moved them to ours
            self.generator.set_state(generator.cpu())
            torch.set_rng_state(state["torch_rng"].cpu())
            if self.device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
            self.seconds = float(state["seconds"])
            self.last_loss = float(state.get("last_loss", math.nan))
            self.measurements = [{"step": int(m["step"]), "epoch": int(m["epoch"]),
                                  "monitor_knn": float(m["monitor_knn"])} for m in state.get("measurements", [])]
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as error:
            raise CheckpointError(f"{path}: its training state is incomplete or corrupt ({type(error).__name__}: "
                                  f"{str(error)[:160]}); resume from checkpoints/previous.pt by moving it to last.pt, "
                                  "or train again into another --out") from None
        self._truncate_metrics()

    # -- metrics -------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "metrics.jsonl"

    def _log(self, record: dict[str, Any]) -> None:
        if self.metrics_path is not None and self.is_main:
            with open(self.metrics_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            if self.logger is not None:
                self.logger.record(record)

    def _truncate_metrics(self) -> None:
        """Drop lines logged after the checkpoint, so a resumed run's log has no duplicates."""
        if self.metrics_path is None or not self.metrics_path.exists() or not self.is_main:
            return
        kept = [record for record in parse_metrics(self.metrics_path) if _step_of(record) <= self.step]
        write_atomic(self.metrics_path, "".join(json.dumps(record) + "\n" for record in kept))

    # -- signals -------------------------------------------------------------------------
    def _on_stop_signal(self, signum: int) -> None:
        if self._stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum

    def _should_stop(self) -> bool:
        """A stop signal seen by any process stops all of them at the same step (the save is collective)."""
        stop = self._stop_signal is not None
        if self.world > 1:
            flag = torch.tensor([float(stop)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _monitor(self, epoch: int, bar: Any) -> None:
        """One online-monitor measurement, logged with the training time (``self.seconds``, which the caller keeps
        up to date and free of the monitor's own time) and the images seen so far."""
        if self.monitor is None:
            return
        if self.step == 0:
            self._log({"step": 0, "epoch": 0, **self.monitor.levels()})
        measured = self.monitor.measure(self.method)
        self._log({"step": self.step, "epoch": epoch, "train_seconds": round(self.seconds, 2),
                   "images_seen": self.step * self.config.train.batch_size, **measured})
        self._status["val_knn"] = f"{measured['monitor_knn']:.3f}"
        bar.set_postfix(self._status, refresh=False)
        if self.config.train.keep_best:
            self._track_best(epoch, measured["monitor_knn"])
        if self.on_monitor is not None:
            self.on_monitor(self.step, self.total_steps, measured["monitor_knn"])

    def _best(self) -> tuple[dict[str, Any] | None, int]:
        """The best measurement so far (None before the first) and the measurements since it."""
        if not self.measurements:
            return None, 0
        index, since = best_so_far([m["monitor_knn"] for m in self.measurements])
        return self.measurements[index], since

    def _track_best(self, epoch: int, knn: float) -> None:
        """train.keep_best: a new best measurement keeps a copy of the weights (and writes checkpoints/best.pt)."""
        self.measurements.append({"step": self.step, "epoch": epoch, "monitor_knn": knn})
        best, since = self._best()
        if since:
            return
        self._best_weights = {key: value.detach().to("cpu", copy=True)
                              for key, value in self.method.state_dict().items()}
        if self.best_path is not None:  # what selfsup.load reads: the model and what it was built for
            save_atomic({"model": self._best_weights, "best": best, "config": self.config.to_dict(),
                         "context": self._context()}, self.best_path)

    def _context(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self.method.context).items() if k != "training"}

    def _out_of_patience(self) -> bool:
        """train.patience measurements in a row without a new best; every process stops at the same epoch end."""
        patience = self.config.train.patience
        out = bool(patience) and self._best()[1] >= patience
        if self.world > 1:  # only rank 0 measures
            flag = torch.tensor([float(out)], device=self.device)
            torch.distributed.broadcast(flag, 0)
            out = bool(flag.item())
        return out

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train to ``total_steps`` (from the resumed step), epoch by epoch; Ctrl-C / SIGTERM save and stop."""
        self.method.train()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress or not self.is_main, unit="step",
                   desc=f"{self.method.name}", mininterval=1.0, dynamic_ncols=True)
        self._window = (0, time.perf_counter())  # images and start of the throughput window
        self._images_per_second = 0.0
        self._collapse_warned = False
        self._collapsed_steps = 0  # the collapse monitor's flags in a row
        self._last_monitored = -1
        if self.step == 0:  # the random-init level of this encoder
            self._monitor(0, bar)
            self._last_monitored = 0
        self._stopping = self._out_of_patience()  # a resumed run may have run out already; later each epoch end asks
        with stop_signals(self._on_stop_signal):
            while self.step < self.total_steps and not self._stopping:
                self._train_epoch(self.step // self.steps_per_epoch, bar)
        bar.close()
        stopped_early = self._stopping and self.step < self.total_steps
        if stopped_early:
            log.info("stopped early at step %d of %d: %d monitor measurements without a new best (train.patience)",
                     self.step, self.total_steps, self._best()[1])
        kept = self._restore_best() if self.config.train.keep_best else None
        self.method.after_training()
        n_images = self.step * getattr(self.source, "batch_size", 0)
        return TrainResult(self.step, self.step // self.steps_per_epoch, self.last_loss, self.seconds,
                           n_images / self.seconds if self.seconds else 0.0, kept, stopped_early)

    def _restore_best(self) -> dict[str, Any] | None:
        """Put the best measurement's weights back into the method (rank 0, which evaluates); after a resume they
        are read from checkpoints/best.pt."""
        best = self._best()[0]
        if not self.is_main or best is None:
            return None
        weights = self._best_weights
        if weights is None:
            assert self.best_path is not None  # a resumed run has a run directory
            state = load_best(self.best_path, self.device)
            load_model_state(self.method, state, self.best_path, self.config.to_dict())
        else:
            self.method.load_state_dict(weights)
        log.info("kept the weights of step %d (epoch %d): validation kNN %.4f (train.keep_best)", best["step"],
                 best["epoch"], best["monitor_knn"])
        return dict(best)

    def _train_epoch(self, epoch: int, bar: Any) -> None:
        """The rest of ``epoch`` from the current step, then its summary line, monitor measurement and checkpoint.
        ``self._tic`` marks the start of the training time not yet added to ``self.seconds``."""
        losses: list[float] = []
        self._tic = time.perf_counter()
        for batch in self.source.epoch(epoch, self.step % self.steps_per_epoch):
            if self.step in self.stage_starts[1:-1]:
                self.optimizer.state.clear()  # a fresh optimizer for the new stage
            lr = float(self.lr_schedule[self.step])
            self.last_loss, output = run_step(self.model, self.method, self.optimizer, batch, self.generator,
                                              self.step, self.total_steps, lr, self.step_settings)
            if not math.isfinite(self.last_loss):
                bar.close()
                where = f" ({self.checkpoint_path})" if self.checkpoint_path else ""
                raise DivergenceError(
                    f"loss became {self.last_loss} at step {self.step} (epoch {epoch + 1}); training stopped and "
                    f"the last good checkpoint was kept{where}. Try a lower learning rate (--lr) or "
                    "gradient clipping (--set optim.grad_clip=1.0)."
                )
            self.step += 1
            losses.append(self.last_loss)
            self._window = (self._window[0] + batch.images.shape[0] * self.world, self._window[1])
            bar.update(1)
            self._after_step(epoch, lr, output, bar)
        self._account()
        if losses:
            self._log({"step": self.step, "epoch": epoch + 1, "epoch_loss": sum(losses) / len(losses),
                       "seconds": round(self.seconds, 2)})
        if self.step != self._last_monitored:
            self._monitor(epoch + 1, bar)
            self._last_monitored = self.step
        self._stopping = self._out_of_patience()
        if self._stopping and self.step < self.total_steps:
            self._log({"step": self.step, "epoch": epoch + 1, "event": "stopped_early",
                       "patience": self.config.train.patience, "best": self._best()[0]})
        finished = self.step >= self.total_steps or self._stopping
        if finished or not self._collapsed_steps:  # a collapsed state does not replace the checkpoint before it
            self.save(finished=finished)

    def _account(self) -> None:
        """Add the training time since ``self._tic`` to ``self.seconds`` and restart the clock (the monitor's and
        the checkpoints' own time stays out)."""
        now = time.perf_counter()
        self.seconds += now - self._tic
        self._tic = now

    def _after_step(self, epoch: int, lr: float, output: Any, bar: Any) -> None:
        """Logging, the collapse warning, the online monitor, a stop signal and the periodic checkpoint."""
        config = self.config.train
        self._collapsed_steps = self._collapsed_steps + 1 if output.logs.get("collapsed") else 0
        if config.collapse_patience and self._collapsed_steps >= config.collapse_patience:
            self._stop_collapsed(epoch, output, bar)
        if output.logs.get("collapsed") and not self._collapse_warned:
            self._collapse_warned = True
            log.warning("representation collapse at step %d (epoch %d): embedding std %.3f "
                        "(1 when spread, 0 when collapsed), effective rank %.1f", self.step, epoch + 1,
                        output.logs.get("embedding_std", math.nan), output.logs.get("effective_rank", math.nan))
        boundary = self.step % config.log_every == 0 or self.step == self.total_steps
        if boundary or output.record:
            self._log_step(epoch, lr, output, bar, boundary)
        every = self.monitor.config.every if self.monitor is not None else 0
        if every and self.step % every == 0:
            self._account()  # the training time so far, as logged
            self._monitor(epoch + 1, bar)
            self._tic = time.perf_counter()  # the monitor's own time is left out
            self._last_monitored = self.step
        if self._should_stop():
            self._account()
            self.save()
            bar.close()
            name = signal.Signals(self._stop_signal or signal.SIGTERM).name
            raise TrainingInterrupted(f"{name} received: checkpoint saved at step {self.step}; continue with --resume")
        if self.step % config.checkpoint_every == 0 and not self._collapsed_steps:
            self._account()
            self.save()
            self._tic = time.perf_counter()

    def _stop_collapsed(self, epoch: int, output: Any, bar: Any) -> None:
        """Stop: the representation has been collapsed for ``collapse_patience`` steps in a row."""
        self._account()
        bar.close()
        first = self.step - self._collapsed_steps + 1
        record = {"step": self.step, "since_step": first, "embedding_std": output.logs.get("embedding_std"),
                  "effective_rank": output.logs.get("effective_rank"), "patience": self.config.train.collapse_patience}
        self._log({"step": self.step, "epoch": epoch + 1, "event": "collapsed", **record})
        where = ""
        if self.checkpoint_path is not None:
            where = (f"; {self.checkpoint_path} is from before it" if self.checkpoint_path.exists()
                     else "; no checkpoint had been written before it")
        raise CollapseError(
            f"the representation collapsed: embedding std {record['embedding_std']:.3f} (under 0.1: every image maps "
            f"to nearly the same point) and effective rank {record['effective_rank']:.1f} at every step from "
            f"{first} to {self.step} (epoch {epoch + 1}); training stopped{where}. Try a lower learning rate (--lr), "
            "a longer warm-up (--set optim.warmup_epochs=2), or search a recipe for this data with "
            "`selfsup tune`; --set train.collapse_patience=0 trains on regardless", record)

    def _log_step(self, epoch: int, lr: float, output: Any, bar: Any, boundary: bool) -> None:
        if boundary:  # throughput over the window since the last boundary
            now = time.perf_counter()
            images, start = self._window
            self._images_per_second = images / max(now - start, 1e-9)
            self._window = (0, now)
        self._log({"step": self.step, "epoch": epoch + 1, "loss": self.last_loss, "lr": lr,
                   "images_per_s": round(self._images_per_second, 1), **output.logs})
        self._status.update(loss=f"{self.last_loss:.4f}", img_s=f"{self._images_per_second:.0f}")
        if output.logs.get("collapsed"):
            self._status["COLLAPSED"] = f"std {output.logs.get('embedding_std', 0):.3f}"
        bar.set_postfix(self._status, refresh=False)
