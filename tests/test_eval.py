import numpy as np
import pytest
import torch

from selfsup.config import EvalConfig
from selfsup.eval import cluster_accuracy, evaluate_features, knn_predict, linear_probe, project_top_subspace


def brute_force_knn(train, train_labels, queries, k, temperature, num_classes):  # type: ignore[no-untyped-def]
    predictions = []
    for query in queries:
        similarities = [float(torch.cosine_similarity(query, row, dim=0)) for row in train]
        nearest = sorted(range(len(similarities)), key=lambda i: -similarities[i])[:k]
        votes = [0.0] * num_classes
        for i in nearest:
            votes[int(train_labels[i])] += float(np.exp(similarities[i] / temperature))
        predictions.append(int(np.argmax(votes)))
    return predictions


def test_knn_matches_brute_force() -> None:
    generator = torch.Generator().manual_seed(0)
    train, queries = torch.randn(60, 5, generator=generator), torch.randn(15, 5, generator=generator)
    labels = torch.randint(0, 3, (60,), generator=generator)
    fast = knn_predict(train, labels, queries, k=7, temperature=0.5, num_classes=3, chunk=4)
    assert fast.tolist() == brute_force_knn(train, labels, queries, 7, 0.5, 3)


def test_cluster_accuracy_matches_clusters_to_classes() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(labels, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert cluster_accuracy(labels, np.array([0, 1, 0, 1, 2, 2])) == pytest.approx(4 / 6)


def test_linear_probe_learns_a_separable_problem() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 20, generator=generator) * 3
    labels = torch.randint(0, 4, (400,), generator=generator)
    features = centres[labels] + torch.randn(400, 20, generator=generator)
    result = linear_probe(features[:300], labels[:300], features[300:], labels[300:], epochs=30, batch_size=64)
    assert result["accuracy"] > 0.95


def test_projection_keeps_inner_products_of_low_rank_features() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(500, 8, generator=generator) @ torch.randn(8, 64, generator=generator)  # rank 8
    small, _ = project_top_subspace(features, features[:5], dim=16)
    assert small.shape == (500, 16)
    assert torch.allclose(small @ small.T, features @ features.T, rtol=1e-3, atol=1e-2)


def test_evaluate_features_report_has_every_protocol() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (200,), generator=generator)
    features = torch.nn.functional.one_hot(labels, 3).float() * 5 + torch.randn(200, 3, generator=generator)
    report = evaluate_features(features[:150], labels[:150], features[150:], labels[150:],
                               EvalConfig(probe_epochs=20, knn_k=5, kmeans_restarts=2))
    assert report["linear_probe"]["accuracy"] > 0.9 and report["knn"]["accuracy"] > 0.9
    assert report["knn"]["k"] == 5
    assert set(report["kmeans"]) >= {"nmi", "ari", "accuracy"} and report["kmeans"]["nmi"] > 0.7


def test_every_inference_mode_gives_the_fp32_features() -> None:
    """bf16 autocast and channels-last change how the encoder runs, not what it computes: fp32 features within
    bf16's rounding of the fp32 NCHW path, in the same order."""
    from selfsup.backbones import create_backbone
    from selfsup.data import make_synthetic
    from selfsup.eval import extract_features
    from selfsup.train.device import INFERENCE_MODES

    data = make_synthetic(96, seed=0, size=16, channels=1)
    torch.manual_seed(0)
    encoder = create_backbone("conv6", in_channels=1, image_size=16).eval()
    reference = extract_features(encoder, data, torch.device("cpu"), 32, progress=False)
    for mode in INFERENCE_MODES:
        mode.prepare(encoder)
        features = extract_features(encoder, data, torch.device("cpu"), 32, False, mode.bf16, mode.channels_last)
        assert features.dtype == torch.float32 and features.shape == reference.shape
        error = (features - reference).norm() / reference.norm()
        assert error < (2e-2 if mode.bf16 else 1e-5), f"{mode}: relative error {error:.2e}"


def test_inference_auto_is_measured_once_and_never_picks_a_slower_mode(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from importlib import import_module

    from selfsup.backbones import create_backbone
    from selfsup.train.device import InferenceMode, resolve_inference

    encoder = create_backbone("conv6", in_channels=1, image_size=16)
    cpu, cache = torch.device("cpu"), tmp_path / "precision.json"
    assert resolve_inference("fp32", cpu, encoder, (1, 16, 16), cache) == InferenceMode()
    assert resolve_inference("train", cpu, encoder, (1, 16, 16), cache, "bf16") == InferenceMode(bf16=True)
    timings = iter([1.0, 0.97, 0.5, 0.98])  # fp32, fp32 CL, bf16, bf16 CL (seconds)
    device_module = import_module("selfsup.train.device")  # (the package's `train` attribute is the function)
    monkeypatch.setattr(device_module, "_best_step_time", lambda *args, **kwargs: next(timings))
    assert resolve_inference("auto", cpu, encoder, (1, 16, 16), cache) == InferenceMode(bf16=True)
    assert resolve_inference("auto", cpu, encoder, (1, 16, 16), cache) == InferenceMode(bf16=True)  # cached
    timings = iter([1.0, 0.97, 0.99, 0.98])  # nothing 5% faster than fp32 NCHW: keep it
    assert resolve_inference("auto", cpu, encoder, (1, 16, 24), cache) == InferenceMode()
