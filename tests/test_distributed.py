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
from selfsup.train import distributed

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
