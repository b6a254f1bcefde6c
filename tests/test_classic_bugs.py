"""Tests written to catch the classic self-supervised bugs, each against a reference that shares no code with
the implementation: gradients through a stop-gradient, evaluation statistics fitted on test data, predictors and
schedules that drift from their papers' formulas.

bench/mutation_check.py breaks the code these tests cover, one mutation at a time, and records that they fail.
"""

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_contract import build

from selfsup.eval import evaluate_features
from selfsup.eval.protocols import fit_linear_probe, kmeans_scores, knn_accuracy, project_top_subspace
from selfsup.methods.siamese import directcopy_predictor, directpred_predictor
from selfsup.ops.schedules import cosine_momentum

# -- stop-gradient: gradients reach the online branch only -----------------------------------------------


def reference_loss(model, views: list[torch.Tensor], weighted: float | None) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The siamese loss from raw tensors: targets computed in a separate pass with no graph (constants), online
    predictions with their graph; -cos summed over the two directions, as in BYOL's symmetrised loss."""
    x = torch.cat(views)
    with torch.no_grad():
        if model.params.ema:
            targets = model.target_projector(model.target_backbone(x)).chunk(len(views))
        else:
            targets = model.projector(model.backbone(x)).chunk(len(views))
    predictions = model.predictor(model.projector(model.backbone(x))).chunk(len(views))

    def neg_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return -(a * b).sum(1).div(a.norm(dim=1) * b.norm(dim=1)).mean()

    if weighted is None:
        return neg_cos(predictions[0], targets[1]) + neg_cos(predictions[1], targets[0])
    w = weighted
    return (neg_cos(predictions[0], w * targets[1] + (1 - w) * targets[2])
            + neg_cos(w * predictions[1] + (1 - w) * predictions[2], targets[0]))


@pytest.mark.parametrize("name, mode", [("byol", None), ("simsiam", None), ("directpred", None),
                                        ("directcopy", None), ("nn-byol", "probabilistic"), ("nn-byol", "weighted")])
def test_gradients_reach_only_the_online_branch(name: str, mode: str | None, tmp_path: Path) -> None:
    model, data, _ = build(name, tmp_path)
    if mode == "weighted":
        model.params = dataclasses.replace(model.params, mode="weighted")
    reference = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    views = [torch.rand(16, data.channels, data.image_size, data.image_size, generator=generator)
             for _ in range(3 if mode == "weighted" else 2)]
    loss = model.views_loss(None, tuple(views)).loss
    loss.backward()
    expected = reference_loss(reference, views, model.params.w if mode == "weighted" else None)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    online = dict(model.named_parameters())
    checked = 0
    for parameter_name, parameter in reference.named_parameters():
        mine = online[parameter_name].grad
        if parameter_name.startswith("target_"):
            assert mine is None, f"{name}: the target network got a gradient ({parameter_name})"
        elif parameter.grad is None:
            assert mine is None or not mine.any(), f"{name}: {parameter_name} got a gradient the reference has not"
        else:
            assert mine is not None and torch.allclose(mine, parameter.grad, rtol=1e-4, atol=1e-6), \
                f"{name}: gradient of {parameter_name} differs from the stop-gradient reference"
            checked += 1
    assert checked >= 4  # backbone, projector (and predictor) parameters were compared
    if model.predictor_from_F is not None:
        assert all(p.grad is None for p in model.predictor.parameters()), "a predictor set from F is not trained"


# -- evaluation isolation: nothing fitted sees the test split -----------------------------------------------

def _features(seed: int, n: int, d: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    centres = torch.randn(4, d, generator=torch.Generator().manual_seed(99)) * 3
    return centres[labels] + torch.randn(n, d, generator=generator), labels


def test_train_fitted_statistics_ignore_the_test_features() -> None:
    train, train_labels = _features(0, 200)
    test, test_labels = _features(1, 80)
    other = test * 7.0 + 3.0  # wildly different test features, same labels
    classifier, a = fit_linear_probe(train, train_labels, test, test_labels, epochs=5, progress=False)
    classifier_other, b = fit_linear_probe(train, train_labels, other, test_labels, epochs=5, progress=False)
    # the standardisation and the classifier (folded together) come from the training features alone
    assert torch.equal(classifier.weight, classifier_other.weight) and torch.equal(classifier.bias,
                                                                                     classifier_other.bias)
    assert a["train_accuracy"] == b["train_accuracy"]
    train_small, test_small = project_top_subspace(train, test, 8)
    train_small_other, other_small = project_top_subspace(train, other, 8)
    assert torch.equal(train_small, train_small_other)  # the subspace is the training features' own
    assert torch.allclose(other_small, test_small * 7.0 + 3.0 * project_top_subspace(train, torch.ones(1, 24), 8)[1],
                          atol=1e-3)  # and the test features are only projected onto it
    fitted = kmeans_scores(train, test, test_labels, 4, restarts=2)
    fitted_other = kmeans_scores(train, other, test_labels, 4, restarts=2)
    assert fitted["inertia_per_sample"] == fitted_other["inertia_per_sample"]  # k-means fitted on train only


def test_a_swap_of_train_and_test_would_change_the_scores() -> None:
    """A training bank of two classes and three test images of class 0: kNN and the probe score the test images
    1.0; with the roles swapped, the three class-0 images would be the bank or the probe's training set, every
    training image would be called class 0, and the score would be 0.5."""
    bank = torch.cat([torch.tensor([[1.0, 0.0]]).repeat(10, 1), torch.tensor([[-1.0, 0.0]]).repeat(10, 1)])
    bank = bank + 0.05 * torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    bank_labels = torch.tensor([0] * 10 + [1] * 10)
    queries = torch.tensor([[1.0, 0.05], [0.9, -0.05], [1.1, 0.0]])
    query_labels = torch.zeros(3, dtype=torch.long)
    assert knn_accuracy(queries, query_labels, bank, bank_labels, k=5)["accuracy"] == 0.5  # what a swap gives
    result = evaluate_features(bank, bank_labels, queries, query_labels, _eval_config(), progress=False)
    assert result["knn"]["accuracy"] == 1.0 and result["linear_probe"]["accuracy"] == 1.0
    assert result["features"]["train_size"] == 20 and result["features"]["test_size"] == 3


def _eval_config():  # type: ignore[no-untyped-def]
    from selfsup.config import EvalConfig

    return EvalConfig(probe_epochs=2, kmeans_restarts=1, max_feature_dim=8)


# -- independent references for predictors and schedules -------------------------------------------------

def jacobi_eigen(matrix: list[list[float]], sweeps: int = 50) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations, in plain Python."""
    n = len(matrix)
    a = [row[:] for row in matrix]
    v = [[float(i == j) for j in range(n)] for i in range(n)]
    for _ in range(sweeps):
        off = sum(a[i][j] ** 2 for i in range(n) for j in range(n) if i != j)
        if off < 1e-22:
            break
        for p in range(n):
            for q in range(p + 1, n):
                if abs(a[p][q]) < 1e-300:
                    continue
                theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1))
                c = 1 / math.sqrt(t * t + 1)
                s = t * c
                for k in range(n):  # A <- J^T A J, V <- V J
                    akp, akq = a[k][p], a[k][q]
                    a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
                for k in range(n):
                    apk, aqk = a[p][k], a[q][k]
                    a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
                for k in range(n):
                    vkp, vkq = v[k][p], v[k][q]
                    v[k][p], v[k][q] = c * vkp - s * vkq, s * vkp + c * vkq
    return [a[i][i] for i in range(n)], v


def correlation(d: int = 6) -> list[list[float]]:
    rows = np.random.default_rng(0).standard_normal((40, d))
    return [[sum(rows[n][i] * rows[n][j] for n in range(40)) / 40 for j in range(d)] for i in range(d)]


def test_directpred_predictor_matches_a_jacobi_eigendecomposition() -> None:
    matrix = correlation()
    values, vectors = jacobi_eigen(matrix)
    top = max(values)
    powers = [max(math.sqrt(max(s / top, 0.0)) + 0.1, 1e-4) for s in values]
    d = len(matrix)
    expected = [[sum(powers[k] * vectors[i][k] * vectors[j][k] for k in range(d)) for j in range(d)] for i in range(d)]
    got = directpred_predictor(torch.tensor(matrix, dtype=torch.float64), 0.1).tolist()
    assert np.allclose(got, expected, atol=1e-9)


def test_directcopy_predictor_matches_an_entrywise_reference() -> None:
    matrix = correlation()
    norm = math.sqrt(sum(value * value for row in matrix for value in row))
    expected = [[value / norm + (0.3 if i == j else 0.0) for j, value in enumerate(row)] for i, row in enumerate(matrix)]
    assert np.allclose(directcopy_predictor(torch.tensor(matrix, dtype=torch.float64), 0.3).tolist(), expected)


def test_cosine_momentum_is_byols_schedule_written_as_a_squared_sine() -> None:
    """BYOL: tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2, which is tau_base + (1 - tau_base) sin^2(pi k / 2K)."""
    base, total = 0.99, 100
    schedule = cosine_momentum(base, total)
    for k in range(total):
        assert schedule[k] == pytest.approx(base + (1 - base) * math.sin(math.pi * k / (2 * total)) ** 2, abs=1e-12)
    assert schedule[0] == pytest.approx(base) and all(a <= b for a, b in zip(schedule[:-1], schedule[1:]))


def test_negative_cosine_on_hand_picked_vectors() -> None:
    from selfsup.losses import negative_cosine

    p = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    z = torch.tensor([[2.0, 0.0], [1.0, 0.0], [-3.0, -4.0]])
    # cosines: 1, 0, -1 -> mean 0 -> loss 0; a scaled copy of p: cosines 1 -> loss -1
    assert negative_cosine(p, z).item() == pytest.approx(0.0, abs=1e-7)
    assert negative_cosine(p, 5 * p).item() == pytest.approx(-1.0, abs=1e-6)
    p.requires_grad_(True)
    negative_cosine(p, z).backward()
    assert p.grad[0].abs().max() < 1e-6  # aligned: a maximum of cos, no gradient
    # orthogonal: the gradient points away from z, so a descent step turns p towards z
    assert F.cosine_similarity(p.grad[1:2], torch.tensor([[-1.0, 0.0]])).item() > 0.99
