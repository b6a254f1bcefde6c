"""Nearest-neighbour mining (seed 004): embed a training set with a trained run, store each image's neighbours.

The search is exact and batched on the device (a chunked similarity matrix, self excluded),
and reports retrieval precision@k against the labels. The file format (``selfsup.data.neighbors``) records
the dataset's name, size and a fingerprint of its images, so a method using it can check it trains on the
same images in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from selfsup.data.neighbors import fingerprint, save_neighbors
from selfsup.errors import ConfigError

METRICS = ("cosine", "euclidean")


@torch.no_grad()
def nearest_neighbors(features: torch.Tensor, k: int = 10, metric: str = "cosine", chunk: int = 2048
                      ) -> torch.Tensor:
    """(N, k) indices of each row's k nearest other rows (self excluded), nearest first. Exact."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    n = features.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k must be in [1, {n - 1}] for {n} images, got {k}")
    x = features.float()
    if metric == "cosine":
        x = F.normalize(x, dim=1)
    squared = x.pow(2).sum(1)
    out = torch.empty(n, k, dtype=torch.long, device=x.device)
    for start in range(0, n, chunk):
        query = x[start : start + chunk]
        if metric == "cosine":
            score = query @ x.T  # higher is nearer
        else:
            score = -(squared[start : start + chunk, None] - 2 * query @ x.T + squared[None])  # -||q - x||^2
        rows = torch.arange(query.shape[0], device=x.device)
        score[rows, rows + start] = float("-inf")  # never yourself
        out[start : start + chunk] = score.topk(k, dim=1).indices
    return out


def precision_at_k(indices: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Fraction of the first k neighbours that share the query's label, for k = 1 and k = all columns."""
    labels = labels.to(indices.device)
    same = (labels[indices] == labels[:, None]).float()
    return {"1": same[:, 0].mean().item(), str(indices.shape[1]): same.mean().item()}


def mine(run_dir: str | Path, metric: str = "cosine", k: int = 10, out: str | Path | None = None,
         overrides: dict[str, Any] | None = None, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Embed the run's training set (or the one ``overrides`` describe) and store each image's k neighbours."""
    from selfsup.api import inference_mode, load
    from selfsup.data.plan import training_data
    from selfsup.eval import extract_features
    from selfsup.train.rundir import read_run_config

    run_dir = Path(run_dir)
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    config = read_run_config(run_dir)
    if overrides:
        config = config.replace(overrides)
    dataset = training_data(config)
    method = load(run_dir, device)
    mode = inference_mode(config.eval, torch.device(device), method, dataset)
    features = extract_features(method.embed, dataset, torch.device(device), 1024, progress, mode.bf16,
                                mode.channels_last)
    indices = nearest_neighbors(features.to(device), k, metric).cpu()
    precision = precision_at_k(indices, dataset.labels)
    record = {"indices": indices, "metric": metric, "k": k, "dataset": config.data.dataset, "size": len(dataset),
              "fingerprint": fingerprint(dataset), "precision_at_k": precision, "run": str(run_dir),
              "method": config.method, "data": {"limit": config.data.limit, "classes": config.data.classes,
                                                "seed": config.train.seed}}
    path = save_neighbors(record, Path(out) if out is not None else run_dir / f"neighbors-{metric}.pt")
    return {**record, "path": str(path), "indices": None}
