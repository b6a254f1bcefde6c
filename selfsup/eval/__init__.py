"""Evaluation of frozen representations: one feature extraction, then every protocol."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from selfsup.config import EvalConfig
from selfsup.data import ImageDataset
from selfsup.eval.protocols import (
    cluster_accuracy,
    extract_features,
    fit_linear_probe,
    kmeans_scores,
    knn_accuracy,
    knn_predict,
    linear_probe,
    project_top_subspace,
)
from selfsup.eval.result import Evaluation


def evaluate_features(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                      config: EvalConfig, seed: int = 0, progress: bool = True) -> Evaluation:
    """Linear probe on the full features; kNN and k-means on features projected to ``max_feature_dim``."""
    timings: dict[str, float] = {}
    tic = time.perf_counter()
    probe = linear_probe(train, train_labels, test, test_labels, config.probe_epochs, config.probe_lr,
                         config.probe_batch_size, seed, progress)
    timings["linear_probe"] = time.perf_counter() - tic
    tic = time.perf_counter()
    train_small, test_small = project_top_subspace(train, test, config.max_feature_dim, seed)
    timings["projection"] = time.perf_counter() - tic
    tic = time.perf_counter()
    knn = knn_accuracy(train_small, train_labels, test_small, test_labels, config.knn_k, config.knn_temperature)
    timings["knn"] = time.perf_counter() - tic
    tic = time.perf_counter()
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    kmeans = kmeans_scores(train_small, test_small, test_labels, num_classes, config.kmeans_restarts, seed)
    timings["kmeans"] = time.perf_counter() - tic
    return Evaluation(
        linear_probe=probe, knn=knn, kmeans=kmeans,
        features={"dim": train.shape[1], "knn_kmeans_dim": train_small.shape[1], "train_size": train.shape[0],
                  "test_size": test.shape[0]},
        seconds={name: round(value, 2) for name, value in timings.items()},
    )


def projected_knn(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                  config: EvalConfig, seed: int = 0) -> dict[str, float]:
    """kNN accuracy as the evaluation measures it: on the top-``max_feature_dim`` singular subspace of wider
    features (the online monitor calls this too, so its figure is the offline kNN on the same images)."""
    train_small, test_small = project_top_subspace(train, test, config.max_feature_dim, seed)
    return knn_accuracy(train_small, train_labels, test_small, test_labels, config.knn_k, config.knn_temperature)


def extract_splits(embed: Callable[[torch.Tensor], torch.Tensor], train: ImageDataset, test: ImageDataset,
                   config: EvalConfig, device: torch.device, progress: bool = True, bf16: bool = False,
                   channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The (fit, scored) features the evaluation's protocols run on (explore reads the same)."""
    return (extract_features(embed, train, device, config.extract_batch_size, progress, bf16, channels_last),
            extract_features(embed, test, device, config.extract_batch_size, progress, bf16, channels_last))


def evaluate_embedding(embed: Callable[[torch.Tensor], torch.Tensor], train: ImageDataset, test: ImageDataset,
                       config: EvalConfig, device: torch.device, seed: int = 0, progress: bool = True,
                       bf16: bool = False, channels_last: bool = False) -> Evaluation:
    """Extract features of both splits once with ``embed`` (under bf16 autocast when ``bf16``, channels-last
    batches when ``channels_last``), then run every protocol on them in fp32."""
    tic = time.perf_counter()
    train_features, test_features = extract_splits(embed, train, test, config, device, progress, bf16, channels_last)
    extraction = time.perf_counter() - tic
    result = evaluate_features(train_features, train.labels.cpu(), test_features, test.labels.cpu(), config, seed,
                               progress)
    result.seconds["features"] = round(extraction, 2)
    result.features["extraction_precision"] = "bf16" if bf16 else "fp32"
    result.features["extraction_format"] = "channels-last" if channels_last else "nchw"
    return result


__all__ = [
    "Evaluation", "cluster_accuracy", "evaluate_embedding", "evaluate_features", "extract_features", "extract_splits",
    "fit_linear_probe", "kmeans_scores",
    "knn_accuracy", "knn_predict", "linear_probe", "project_top_subspace", "projected_knn",
]
