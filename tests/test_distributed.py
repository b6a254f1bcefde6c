"""Batch-level losses across processes: 2 gloo processes with batch B give the loss and gradients of one
process with batch 2B (issue 6, part 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.losses import barlow_twins, embedding_loss, nt_xent
from selfsup.ops import distributed

WORLD = 2
BATCH = 6  # per process
DIM_IN, DIM = 10, 8


def _model_and_data() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(DIM_IN, 16), torch.nn.ReLU(), torch.nn.Linear(16, DIM)).double()
    x1 = torch.randn(WORLD * BATCH, DIM_IN, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(WORLD * BATCH, DIM_IN, dtype=torch.float64)
    return model, x1, x2


def _loss(kind: str, z1: torch.Tensor, z2: torch.Tensor, **gather: object) -> torch.Tensor:
    if kind == "nt-xent":
        return nt_xent(z1, z2, 0.5, **gather)  # type: ignore[arg-type]
    if kind == "barlow-twins":
        return barlow_twins(z1, z2, 5e-3, gather=gather.get("gather"))  # type: ignore[arg-type]
    return embedding_loss(z1, z2, kind.removeprefix("embedding-"), **gather)  # type: ignore[arg-type]


def _worker(rank: int, init_file: str, kind: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        assert distributed.is_distributed() and distributed.world_size() == WORLD and distributed.rank() == rank
        model, x1, x2 = _model_and_data()
        rows = slice(rank * BATCH, (rank + 1) * BATCH)
        if kind == "correlation":  # DirectPred / DirectCopy's F update statistic
            z = model(x1[rows]).detach()
            results[rank] = {"corr": distributed.all_reduce_mean(z.T @ z / z.shape[0])}
            return
        loss = _loss(kind, model(x1[rows]), model(x2[rows]), **distributed.batch_gather())
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        for grad in grads:  # what DDP does to parameter gradients: the mean over processes
            dist.all_reduce(grad)
            grad /= WORLD
        reported = loss.detach().clone()
        dist.all_reduce(reported)
        results[rank] = {"loss": (reported / WORLD).item(), "grads": grads}
    finally:
        dist.destroy_process_group()


def _run(kind: str, tmp_path: Path) -> dict:
    manager = mp.Manager()
    results = manager.dict()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(str(tmp_path / "init"), kind, results), nprocs=WORLD, join=True)
    return dict(results)


@pytest.mark.parametrize("kind", ["nt-xent", "barlow-twins", "embedding-nt-xent", "embedding-barlow-twins"])
def test_two_processes_equal_one_process_with_the_doubled_batch(kind: str, tmp_path: Path) -> None:
    results = _run(kind, tmp_path)
    model, x1, x2 = _model_and_data()
    loss = _loss(kind, model(x1), model(x2))
    loss.backward()
    for rank in range(WORLD):
        assert results[rank]["loss"] == pytest.approx(loss.item(), rel=1e-10)
        for got, expected in zip(results[rank]["grads"], (p.grad for p in model.parameters())):
            torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_the_correlation_for_F_is_that_of_the_global_batch(tmp_path: Path) -> None:
    results = _run("correlation", tmp_path)
    model, x1, _ = _model_and_data()
    z = model(x1).detach()
    for rank in range(WORLD):
        torch.testing.assert_close(results[rank]["corr"], z.T @ z / z.shape[0])


def test_one_process_helpers_are_the_identity() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    assert distributed.gather_with_grad(x) is x and distributed.all_reduce_mean(x) is x
    assert distributed.batch_gather() == {} and distributed.world_size() == 1 and distributed.rank() == 0


# -- distributed training -------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_config():  # type: ignore[no-untyped-def]
    from selfsup.config import RunConfig

    return RunConfig().replace({"backbone": "mlp", "dataset": "synthetic", "limit": 256, "epochs": 2,
                                "train.batch_size": 64, "checkpoint_every": 3, "log_every": 1, "train.threads": 1,
                                "train.device": "cpu",  # gloo processes, also where one GPU is present
                                "eval.probe_epochs": 2, "eval.train_limit": 300, "eval.test_limit": 100})


def _train_worker(rank: int, port: int, out: str, stop_at: int | None, results: dict) -> None:
    import signal

    import selfsup
    from selfsup.methods.simclr import SimCLR
    from selfsup.train import TrainingInterrupted

    os.environ.update({"WORLD_SIZE": str(WORLD), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    if stop_at is not None:  # SIGTERM to this process after an optimizer step, as torchrun forwards it
        original = SimCLR.after_optimizer_step

        def stop(self, step, total):  # type: ignore[no-untyped-def]
            original(self, step, total)
            if step + 1 == stop_at:
                os.kill(os.getpid(), signal.SIGTERM)

        SimCLR.after_optimizer_step = stop
    try:
        result = selfsup.train(_tiny_config(), out=out, resume=True, progress=False)
        results[rank] = {"steps": result.train.steps, "eval": result.eval is not None,
                         "weights": {k: v.detach().clone() for k, v in result.method.named_parameters()}}
    except TrainingInterrupted as error:
        results[rank] = {"interrupted": str(error)}
    finally:
        dist.destroy_process_group()


def _keep_best_worker(rank: int, port: int, out: str, results: dict) -> None:
    """train.patience under two processes: rank 0 measures (a scripted monitor) and decides; both stop together."""
    import selfsup
    from selfsup.eval.monitor import OnlineMonitor

    os.environ.update({"WORLD_SIZE": str(WORLD), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    values = iter([0.5, 0.7, 0.6, 0.9, 0.95])  # before the first step, then epochs 1, 2, ...: patience 1 stops after 2
    OnlineMonitor.measure = lambda self, method: {"monitor_knn": next(values)}  # type: ignore[method-assign]
    try:
        config = _tiny_config().replace({"epochs": 4, "train.keep_best": True, "train.patience": 1,
                                         "monitor.bank": 100, "monitor.queries": 50})
        result = selfsup.train(config, out=out, progress=False, evaluate=False)
        results[rank] = {"steps": result.train.steps, "stopped": result.train.stopped_early,
                         "kept": result.train.kept}
    finally:
        dist.destroy_process_group()


def test_patience_stops_every_process_at_the_same_step(tmp_path: Path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_keep_best_worker, args=(_free_port(), str(tmp_path / "run"), results), nprocs=WORLD, join=True)
    per_epoch = 256 // 64
    assert results[0]["steps"] == results[1]["steps"] == 2 * per_epoch
    assert results[0]["stopped"] and results[1]["stopped"]
    assert results[0]["kept"] == {"step": per_epoch, "epoch": 1, "monitor_knn": 0.7}  # rank 0 holds the weights
    assert results[1]["kept"] is None
    assert torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=False)["best"]["epoch"] == 1


def _spawn_training(out: Path, stop_at: int | None = None) -> dict:
    results = mp.Manager().dict()
    mp.spawn(_train_worker, args=(_free_port(), str(out), stop_at, results), nprocs=WORLD, join=True)
    return dict(results)


def test_distributed_simclr_writes_one_run_directory_and_resumes(tmp_path: Path) -> None:
    import json

    out = tmp_path / "run"
    first = _spawn_training(out, stop_at=5)
    assert all("checkpoint saved at step 5" in first[r]["interrupted"] for r in range(WORLD))
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == 5 and state["world_size"] == WORLD and len(state["generators"]) == WORLD

    second = _spawn_training(out)
    total = 2 * (256 // 64)
    assert second[0]["steps"] == second[1]["steps"] == total
    assert second[0]["eval"] and not second[1]["eval"]  # rank 0 evaluates
    for name, value in second[0]["weights"].items():  # DDP kept the parameters identical (BN running stats are per process)
        torch.testing.assert_close(value, second[1]["weights"][name])
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, total + 1))  # one writer, no duplicates across the restart
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "eval.json", "metrics.jsonl",
                                                     "plots"]

    import selfsup  # noqa: F401  (one process cannot resume a 2-process checkpoint)
    from selfsup.api import build_method
    from selfsup.data import InMemorySource, load_dataset
    from selfsup.errors import ConfigError
    from selfsup.methods import MethodContext
    from selfsup.train import Trainer

    config = _tiny_config()
    data = load_dataset("synthetic", "train").random_subset(256, 0)
    method = build_method(config, MethodContext(3, 16, 256))
    trainer = Trainer(method, InMemorySource(data, 64, 0, "cpu"), config, torch.device("cpu"), progress=False)
    with pytest.raises(ConfigError, match="written by 2 process.*this run has 1"):
        trainer.load(out / "checkpoints" / "last.pt")


def test_shards_of_an_epoch_are_disjoint_and_cover_the_single_process_batches() -> None:
    from selfsup.data import InMemorySource, load_dataset

    data = load_dataset("synthetic", "train").random_subset(200, 0)
    single = [b.indices for b in InMemorySource(data, 40, 3, "cpu").epoch(1)]
    shards = [[b.indices for b in InMemorySource(data, 40, 3, "cpu", rank, 2).epoch(1)] for rank in range(2)]
    for step, indices in enumerate(single):
        assert torch.equal(torch.cat([shards[0][step], shards[1][step]]), indices)
    with pytest.raises(ValueError, match="batch size 40 is not divisible by the 3 processes"):
        InMemorySource(data, 40, 3, "cpu", 0, 3)
