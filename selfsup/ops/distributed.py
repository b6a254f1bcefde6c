"""torch.distributed helpers: the global batch for batch-level losses.

Outside a process group (one process) every helper is the identity, so methods call them
unconditionally. Inside one (started by ``torchrun``: NCCL on GPUs, gloo on CPU):

- ``gather_with_grad(x)`` concatenates every process's (B, ...) tensor along dim 0 and sends the
  gradient of each slice back to its owner (summed over processes), so a loss computed on the
  gathered batch back-propagates into every process's encoder.
- ``all_reduce_mean(x)`` averages a statistic (DirectPred's correlation matrix) over processes.

With DDP averaging parameter gradients, N processes with batch B then give the loss and
gradients of one process with batch N x B (``tests/test_distributed.py`` checks this with 2
gloo processes).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rows = x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every process's loss depends on every slice: sum their gradients
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """(world * B, ...) from every process's (B, ...), differentiable; ``x`` itself in one process."""
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over processes (no gradient); ``x`` itself in one process."""
    if not is_distributed():
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def batch_gather() -> dict:
    """Keyword arguments for the batch-level losses (``nt_xent``, ``barlow_twins``, ``embedding_loss``):
    the global batch under several processes, nothing in one."""
    return {"gather": gather_with_grad, "rank": rank()} if is_distributed() else {}


def init_from_env(device: str = "auto") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT):
    NCCL when training on CUDA, gloo on CPU. Returns (rank, world size); (0, 1) outside torchrun."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device != "cpu"
        if use_cuda:
            local_rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if local_rank >= gpus:
                from selfsup.errors import ConfigError

                raise ConfigError(f"process with LOCAL_RANK {local_rank} has no GPU of its own: this machine has {gpus}; "
                                  f"start at most {gpus} process(es) per machine (torchrun --nproc_per_node {gpus}), "
                                  "or train on CPU processes with --device cpu")
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device) -> torch.device:
    """Under several processes on CUDA, this process's GPU (LOCAL_RANK)."""
    import os

    if is_distributed() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(value: object) -> object:
    """Rank 0's ``value`` on every process."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: object) -> list:
    """Every process's ``value``, in rank order (on every process)."""
    if not is_distributed():
        return [value]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out
