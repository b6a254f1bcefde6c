"""Evaluation protocols on frozen features extracted once: linear probe, kNN, k-means."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from selfsup.data import ImageDataset
from selfsup.train.step import apply_gradients


@torch.no_grad()
def extract_features(embed: Callable[[torch.Tensor], torch.Tensor], dataset: ImageDataset, device: torch.device,
                     batch_size: int = 1024, progress: bool = True, bf16: bool = False,
                     channels_last: bool = False) -> torch.Tensor:
    """(N, D) float32 features of every image, in order, on the CPU; under bf16 autocast when ``bf16`` and with
    image batches in the channels-last memory format when ``channels_last`` (the inference mode the device
    measured fastest; the encoder should be in that format too), returned in fp32 all the same."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batches = tqdm(dataset.float_batches(batch_size), total=math.ceil(len(dataset) / batch_size), unit="batch",
                   desc=f"features {dataset.name}".strip(), leave=False,
                   disable=not progress or len(dataset) < 20 * batch_size)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        return torch.cat([embed(batch.to(device).contiguous(memory_format=memory_format)).float().flatten(1).cpu()
                          for batch in batches])


def project_top_subspace(train: torch.Tensor, test: torch.Tensor, dim: int, seed: int = 0,
                         fit_rows: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Project onto the top-``dim`` right singular subspace of the (uncentred) training features.

    Keeps inner products, and so cosine neighbours and Euclidean clusters, up to the discarded
    tail of the spectrum, at a fraction of the cost of kNN in thousands of dimensions. The
    subspace is estimated from at most ``fit_rows`` random training rows.
    """
    if dim <= 0 or train.shape[1] <= dim:
        return train, test
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(train.shape[0], generator=generator)[:fit_rows]
    torch.manual_seed(seed)  # svd_lowrank draws its random test matrix from the global generator
    _, _, v = torch.svd_lowrank(train[rows], q=min(dim + 10, *train[rows].shape), niter=2)
    v = v[:, :dim]  # (D, dim)
    return train @ v, test @ v


MIN_PROBE_STEPS = 300


def linear_probe(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                 epochs: int = 100, lr: float = 1e-3, batch_size: int = 1024, seed: int = 0,
                 progress: bool = True) -> dict[str, float]:
    """Softmax regression on standardised frozen features; Adam with cosine decay, no augmentation."""
    return fit_linear_probe(train, train_labels, test, test_labels, epochs, lr, batch_size, seed, progress)[1]


def fit_linear_probe(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                     epochs: int = 100, lr: float = 1e-3, batch_size: int = 1024, seed: int = 0,
                     progress: bool = True) -> tuple[torch.nn.Sequential, dict[str, float]]:
    """``linear_probe``, also returning the fitted classifier of raw features: standardisation folded into one
    ``Linear`` layer (used to start fine-tuning from the probe's solution)."""
    generator = torch.Generator().manual_seed(seed)
    mean, std = train.mean(0), train.std(0) + 1e-6
    train = (train - mean) / std
    test = (test - mean) / std
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    layer = torch.nn.Linear(train.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)  # a convex problem: start from the symmetric point, not a random tilt
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=1e-6)
    steps_per_epoch = math.ceil(train.shape[0] / batch_size)
    epochs = max(epochs, math.ceil(MIN_PROBE_STEPS / steps_per_epoch))  # small sets still get enough steps
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    # Shuffle once, then visit contiguous slices in a random order each epoch: no per-epoch copy of the features.
    order = torch.randperm(train.shape[0], generator=generator)
    train, train_labels = train[order], train_labels[order]
    for _ in tqdm(range(epochs), desc="linear probe", unit="epoch", leave=False,
                  disable=not progress or train.shape[0] < 20_000):
        for index in torch.randperm(steps_per_epoch, generator=generator).tolist():
            rows = slice(index * batch_size, (index + 1) * batch_size)
            apply_gradients(F.cross_entropy(layer(train[rows]), train_labels[rows]), optimizer)
            scheduler.step()
    with torch.no_grad():
        train_accuracy = (layer(train).argmax(1) == train_labels).float().mean().item()
        test_accuracy = (layer(test).argmax(1) == test_labels).float().mean().item()
        folded = torch.nn.Linear(layer.in_features, num_classes)  # W ((x - m) / s) + b = (W / s) x + (b - W m / s)
        folded.weight.copy_(layer.weight / std)
        folded.bias.copy_(layer.bias - (layer.weight / std) @ mean)
    return folded, {"accuracy": test_accuracy, "train_accuracy": train_accuracy, "epochs": epochs}


@torch.no_grad()
def knn_search(train: torch.Tensor, queries: torch.Tensor, k: int = 20, chunk: int = 1024
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarity, index), each (q, k): every query's ``k`` most cosine-similar rows of ``train``, best first."""
    k = min(k, train.shape[0])
    bank = F.normalize(train, dim=1)
    found = [(F.normalize(queries[start : start + chunk], dim=1) @ bank.T).topk(k, dim=1)
             for start in range(0, queries.shape[0], chunk)]
    return torch.cat([f.values for f in found]), torch.cat([f.indices for f in found])


def knn_votes(similarity: torch.Tensor, index: torch.Tensor, train_labels: torch.Tensor, temperature: float = 0.07,
              num_classes: int | None = None) -> torch.Tensor:
    """(q, classes) weighted votes of neighbours found by ``knn_search`` (Wu et al. 2018): each adds exp(sim / T)."""
    num_classes = num_classes or int(train_labels.max()) + 1
    votes = torch.zeros(similarity.shape[0], num_classes)
    return votes.scatter_add_(1, train_labels[index], (similarity / temperature).exp())


def knn_predict(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor, k: int = 20,
                temperature: float = 0.07, num_classes: int | None = None, chunk: int = 1024) -> torch.Tensor:
    """Weighted kNN vote on cosine similarity (Wu et al. 2018): each of the k neighbours adds exp(sim / T)."""
    similarity, index = knn_search(train, queries, k, chunk)
    return knn_votes(similarity, index, train_labels, temperature, num_classes).argmax(1)


def knn_accuracy(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
                 k: int = 20, temperature: float = 0.07) -> dict[str, float]:
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    predicted = knn_predict(train, train_labels, test, k, temperature, num_classes)
    return {"accuracy": (predicted == test_labels).float().mean().item(), "k": k, "temperature": temperature}


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    size = int(max(labels.max(), clusters.max())) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / labels.shape[0])


def kmeans_fit(train: torch.Tensor, num_clusters: int, restarts: int = 3, seed: int = 0) -> Any:
    """scikit-learn's k-means fitted on the training features (``.predict`` assigns new ones)."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=num_clusters, n_init=restarts, random_state=seed).fit(train.numpy())


def kmeans_scores(train: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, num_clusters: int,
                  restarts: int = 3, seed: int = 0) -> dict[str, float]:
    """k-means fitted on the training features, scored on the test split: NMI, ARI, matched accuracy."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    model = kmeans_fit(train, num_clusters, restarts, seed)
    clusters = model.predict(test.numpy())
    labels = test_labels.numpy()
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "accuracy": cluster_accuracy(labels, clusters),
        "inertia_per_sample": float(model.inertia_ / train.shape[0]),
        "clusters": num_clusters,
    }
