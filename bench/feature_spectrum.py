"""Why the autoencoders' Conv6 maps lose to a random Conv6 on probe and kNN (issue 3).

Reads the benchmark runs in bench/results/runs (train them first with `selfsup bench accuracy`).
Part 1: spectrum of the Conv6 feature map on 2,000 test images: effective rank (exp of the entropy
of the normalised squared singular values of the centred features), the share of variance in the
top 10 directions, the mean feature norm. Part 2: kNN on 10k training / 2k test features, as the
benchmark projects them, standardised per dimension, and PCA-whitened (top 256), and the probe.

    python bench/feature_spectrum.py                        # issue 3's runs
    python bench/feature_spectrum.py simclr byol simsiam    # these runs, both parts, beside random init
"""

from __future__ import annotations

import sys

import torch

from selfsup.api import load
from selfsup.backbones import create_backbone
from selfsup.data import load_dataset
from selfsup.eval import extract_features, knn_accuracy, linear_probe, project_top_subspace

RUNS = "bench/results/runs/{}-10000x10"


def spectrum(features: torch.Tensor) -> dict[str, float]:
    features = features.flatten(1)
    centred = features - features.mean(0)
    share = torch.linalg.svdvals(centred).pow(2)
    share = share / share.sum()
    return {"effective_rank": round(torch.exp(-(share * torch.log(share + 1e-12)).sum()).item(), 1),
            "top10_variance": round(share[:10].sum().item(), 3),
            "mean_norm": round(features.norm(dim=1).mean().item(), 2)}


def knn_variants(encoder: torch.nn.Module, train, test) -> dict[str, float]:  # type: ignore[no-untyped-def]
    device = torch.device("cpu")
    a = extract_features(encoder, train, device, 1000, False)
    b = extract_features(encoder, test, device, 1000, False)
    out = {}
    pa, pb = project_top_subspace(a, b, 256)
    out["knn_projected"] = knn_accuracy(pa, train.labels, pb, test.labels)["accuracy"]
    mean, std = a.mean(0), a.std(0) + 1e-6
    sa, sb = project_top_subspace((a - mean) / std, (b - mean) / std, 256)
    out["knn_standardised"] = knn_accuracy(sa, train.labels, sb, test.labels)["accuracy"]
    _, values, vectors = torch.svd_lowrank(a - a.mean(0), q=266, niter=2)
    whiten = vectors[:, :256] / values[:256]
    out["knn_whitened256"] = knn_accuracy((a - a.mean(0)) @ whiten, train.labels, (b - a.mean(0)) @ whiten,
                                          test.labels)["accuracy"]
    out["probe"] = linear_probe(a, train.labels, b, test.labels, 30, progress=False)["accuracy"]
    return {k: round(v, 4) for k, v in out.items()}


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoders = {"random-init": create_backbone("conv6", in_channels=1, image_size=28).eval()}
    for run in runs or ("ae", "dae", "cae", "layerwise", "vae", "parallel-ae", "parallel-dae", "simclr"):
        encoders[run] = load(RUNS.format(run)).backbone
    test_small = load_dataset("fashion-mnist", "test").random_subset(2000, 0)
    images = test_small.images.float() / 255
    with torch.no_grad():
        for name, encoder in encoders.items():
            print(name, spectrum(encoder(images)), flush=True)
        if not runs:
            torch.manual_seed(0)  # seed 003's randomized autoencoder runs on the MLP
            print("random-init mlp", spectrum(create_backbone("mlp", in_channels=1, image_size=28).eval()(images)))
            print("rae (mlp)", spectrum(load("bench/results/runs/rae-mlp-10000x10").backbone(images)), flush=True)
    train = load_dataset("fashion-mnist", "train").random_subset(10000, 1)
    for name in ["random-init", *(runs or ("ae", "dae"))]:
        print(name, knn_variants(encoders[name], train, test_small), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
