"""`selfsup explore`: what an encoder learned, as data for one interactive page (experiments/explore_page.py).

For each run (and, with ``against="random-init"``, the random-init encoder the baselines use), the features of
the fitting split and of the scored split are extracted exactly as `selfsup eval` extracts them (same precision
and memory format, same projection to ``eval.max_feature_dim``); each scored image's k nearest neighbours are
searched in that full feature space with the fitting split as the bank, and its kNN prediction is the
evaluation's weighted vote over them, so the accuracy over the whole split is eval.json's kNN accuracy. k-means
is fitted on the fitting split as the evaluation fits it. Only the map (UMAP, or t-SNE) is computed on the
``n`` images shown, and only for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.config import RunConfig
from selfsup.data import ImageDataset
from selfsup.errors import ConfigError

AGAINST = ("random-init",)
PROJECTIONS = ("umap", "tsne")


@dataclass
class Representation:
    """One encoder's view of the shown images."""

    label: str  # the run's name, or "random init"
    xy: np.ndarray  # (n, 2) the map
    predicted: np.ndarray  # (n,) kNN prediction
    neighbours: np.ndarray  # (n, k) positions in the bank (the fitting split), nearest first
    similarity: np.ndarray  # (n, k) their cosine similarities
    clusters: np.ndarray  # (n,) k-means cluster (fitted on the bank)
    accuracy: float  # kNN accuracy over every image of the split: eval.json's figure
    scored: int  # images of the split the accuracy is over
    note: str = ""  # e.g. "VAE: the mean code"


@dataclass
class Exploration:
    """Everything the page shows: the images, their labels and each encoder's representation of them."""

    split: str
    classes: list[str]
    index: np.ndarray  # (n,) positions of the shown images in the split
    images: np.ndarray  # (n, C, H, W) uint8
    labels: np.ndarray  # (n,)
    files: list[str] | None  # image folders: each shown image's file
    bank_labels: np.ndarray  # (N,) labels of the fitting split
    bank_images: dict[int, np.ndarray]  # the bank images some shown image has as a neighbour
    representations: list[Representation]
    reconstructions: list[np.ndarray | None]  # per representation, (n, C, H, W) uint8 or None
    data: dict[str, Any]  # eval.json's data record of the split
    projection: str
    knn: dict[str, Any]  # k, temperature, dim: the evaluation's kNN settings


def explore(runs: list[str | Path], against: str | None = None, split: str = "test", n: int = 5000, k: int = 5,
            projection: str = "auto", seed: int = 0, progress: bool = True) -> Exploration:
    """The exploration of one run, or two runs side by side (``runs`` of two, or one run ``against``
    random-init)."""
    from selfsup import api
    from selfsup.data.plan import evaluation_splits
    from selfsup.experiments.baselines import random_init_encoder
    from selfsup.train.rundir import read_run_config

    if not 1 <= len(runs) <= 2 or (len(runs) == 2 and against is not None):
        raise ConfigError("explore one run, two runs, or one run --against random-init")
    if against is not None and against not in AGAINST:
        raise ConfigError(f"--against {against!r}: only {', '.join(AGAINST)}")
    if n < 1 or k < 1:
        raise ConfigError(f"--n and --k must be at least 1 (got {n} and {k})")
    projection = choose_projection(projection)
    configs = [read_run_config(Path(run)).replace({"eval.split": split}) for run in runs]
    first = configs[0]
    splits = evaluation_splits(first.data, first.eval, first.train.seed)
    for run, config in zip(runs[1:], configs[1:]):
        other = evaluation_splits(config.data, config.eval, config.train.seed) if (
            config.data, config.eval, config.train.seed) != (first.data, first.eval, first.train.seed) else splits
        if other.data != splits.data:
            raise ConfigError(f"{runs[0]} and {run} were evaluated on different data ({splits.data.get('dataset')} "
                              f"and {other.data.get('dataset')}); explore two runs of the same data side by side")
    fit, scored = splits
    if bool((scored.labels < 0).any()):
        raise ConfigError(f"the {split} split of {splits.data.get('source')} has unlabelled images; explore a labelled "
                          "split (eval.split, data.eval_data_dir)")
    shown = torch.randperm(len(scored), generator=torch.Generator().manual_seed(seed))[: min(n, len(scored))]
    shown = shown.sort().values
    encoders: list[tuple[str, Any, RunConfig]] = []
    for run, config in zip(runs, configs):
        device = api.setup_device(config)
        encoders.append((Path(run).name, api.load(run, device), config))
    if against == "random-init":  # the baseline's reference: seed 0, projected and clustered with seed 0
        encoders.append(("random init", random_init_encoder(first.backbone, fit.channels, fit.image_size, 0),
                         first.replace({"train.seed": 0})))
    representations, reconstructions = [], []
    for label, encoder, config in encoders:
        representation, reconstruction = represent(label, encoder, config, fit, scored, shown, k, projection, seed,
                                                   progress)
        representations.append(representation)
        reconstructions.append(reconstruction)
    used = sorted({int(i) for r in representations for i in r.neighbours.reshape(-1)})
    return Exploration(
        split=split, classes=list(scored.classes) or [str(i) for i in range(int(fit.labels.max()) + 1)],
        index=shown.numpy(), images=scored.images[shown].numpy(), labels=scored.labels[shown].numpy(),
        files=None if scored.files is None else [scored.files[i] for i in shown.tolist()],
        bank_labels=fit.labels.numpy(), bank_images={i: fit.images[i].numpy() for i in used},
        representations=representations, reconstructions=reconstructions, data=splits.data, projection=projection,
        knn={"k": first.eval.knn_k, "temperature": first.eval.knn_temperature, "dim": first.eval.max_feature_dim})


def represent(label: str, encoder: Any, config: RunConfig, fit: ImageDataset, scored: ImageDataset,
              shown: torch.Tensor, k: int, projection: str, seed: int, progress: bool
              ) -> tuple[Representation, np.ndarray | None]:
    """``encoder``'s features as the evaluation extracts them; neighbours, kNN vote and k-means as it computes
    them; the map of the shown images."""
    from selfsup import api
    from selfsup.data.cache import decision_cache
    from selfsup.eval import extract_splits, project_top_subspace
    from selfsup.eval.protocols import kmeans_fit, knn_search, knn_votes
    from selfsup.experiments.figures import project_2d
    from selfsup.train.device import resolve_precision

    weight = next(encoder.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    precision = resolve_precision(config.train.precision, device, decision_cache())
    mode = api.inference_mode(config.eval, device, encoder, fit, precision)
    encoder.eval()
    fit_features, scored_features = extract_splits(getattr(encoder, "embed", encoder), fit, scored, config.eval,
                                                   device, progress, mode.bf16, mode.channels_last)
    seed_eval = config.train.seed  # the seed `selfsup eval` projects and clusters with
    bank, queries = project_top_subspace(fit_features, scored_features, config.eval.max_feature_dim, seed_eval)
    similarity, index = knn_search(bank, queries, config.eval.knn_k)
    num_classes = int(max(fit.labels.max(), scored.labels.max())) + 1
    predicted = knn_votes(similarity, index, fit.labels, config.eval.knn_temperature, num_classes).argmax(1)
    accuracy = (predicted == scored.labels).float().mean().item()
    clusters = kmeans_fit(bank, num_classes, config.eval.kmeans_restarts, seed_eval).predict(queries[shown].numpy())
    # cosine neighbourhoods, as the kNN sees them: unit rows; 750 t-SNE iterations, a quarter less time, settled
    xy = project_2d(F.normalize(queries[shown], dim=1).numpy(), projection, seed, iterations=750)
    note = ""
    if getattr(getattr(config, "params", None), "representation", None) == "latent" and config.method == "vae":
        note = "VAE: the representation is the mean code"
    reconstruction = None
    if getattr(encoder, "reconstructs", False):
        with torch.no_grad():
            images = scored.subset(shown)
            outputs = torch.cat([encoder.reconstruct(b.to(device)).float().cpu()
                                 for b in images.float_batches(config.eval.extract_batch_size)])
        reconstruction = (outputs.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    show = min(k, index.shape[1])
    return Representation(label, xy, predicted[shown].numpy(), index[shown, :show].numpy(),
                          similarity[shown, :show].numpy(), np.asarray(clusters), accuracy, len(scored),
                          note), reconstruction


def choose_projection(projection: str) -> str:
    """``auto`` is t-SNE: on 2 CPU cores it maps 5,000 points in about 25 s, where UMAP spends longer than that
    compiling its numba code in every new process (bench/results/explore.json)."""
    if projection == "auto":
        return "tsne"
    if projection == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            raise ConfigError("--projection umap needs umap-learn: pip install umap-learn") from None
    if projection not in PROJECTIONS:
        raise ConfigError(f"--projection {projection!r}: one of auto, {', '.join(PROJECTIONS)}")
    return projection
