"""The joint-embedding family: losses and predictors against naive references, EMA, neighbours, bad input."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke

from selfsup.api import build_method
from selfsup.config import RunConfig
from selfsup.data import Batch, make_synthetic
from selfsup.errors import ConfigError
from selfsup.experiments.neighbors import nearest_neighbors, precision_at_k
from selfsup.losses import barlow_twins
from selfsup.methods import MethodContext
from selfsup.methods.rotnet import rotate
from selfsup.methods.siamese import directpred_predictor, eigenspace_stats
from selfsup.ops.collapse import embedding_health


def fixed_correlation(d: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(40, d, generator=generator, dtype=torch.float64)
    return a.T @ a / 40


def test_eigenspace_stats_of_a_predictor_sharing_F_eigenvectors() -> None:
    F = fixed_correlation()
    stats = eigenspace_stats(F, directpred_predictor(F, 0.1))
    assert np.allclose(stats["alignment"], 1.0) and stats["asymmetry"] < 1e-10
    assert stats["eigen_F"] == sorted(stats["eigen_F"], reverse=True)
    skew = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert eigenspace_stats(torch.eye(2), torch.eye(2) + skew)["asymmetry"] > 0.5


def test_barlow_twins_matches_a_naive_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 5, generator=generator), torch.randn(16, 5, generator=generator)
    a = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    b = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    expected = 0.0
    for i in range(5):
        for j in range(5):
            c = sum(a[n, i].item() * b[n, j].item() for n in range(16)) / 16
            expected += (1 - c) ** 2 if i == j else 0.01 * c**2
    assert math.isclose(barlow_twins(z1, z2, lambd=0.01).item(), expected, rel_tol=1e-4)
    assert barlow_twins(z1, z1, lambd=0.0).item() < 1e-4  # identical views: a unit diagonal


def test_ema_update_follows_its_formula() -> None:
    config = RunConfig().replace({"method": "byol", "backbone": "mlp", "ema_momentum": 0.9})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(1, 16, 10))
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    online = [p.detach().clone() for p in model.backbone.parameters()]
    target = [p.detach().clone() for p in model.target_backbone.parameters()]
    model.begin_step(0, 10)
    model.after_optimizer_step(0, 10)
    for t_new, t_old, o in zip(model.target_backbone.parameters(), target, online):
        assert torch.allclose(t_new, 0.9 * t_old + 0.1 * o)


def test_symmetry_regularisation_makes_the_predictor_symmetric() -> None:
    for predictor in ("linear", "mlp"):
        config = RunConfig().replace({"method": "simsiam", "backbone": "mlp", "predictor": predictor,
                                      "symmetric_predictor": True})
        model = build_method(config, MethodContext(1, 16, 10))
        model.after_optimizer_step(0, 10)
        weights = [m.weight for m in model.predictor if isinstance(m, torch.nn.Linear)]
        if len(weights) == 1:
            assert torch.allclose(weights[0], weights[0].T)
        else:
            assert torch.allclose(weights[0], weights[1].T)


def test_directpred_writes_its_predictor_from_F_after_a_step() -> None:
    config = RunConfig().replace({"method": "directpred", "backbone": "mlp"})
    model = build_method(config, MethodContext(1, 16, 10))
    x = torch.rand(8, 1, 16, 16)
    model.siamese_loss(x, x.flip(3))
    model.after_optimizer_step(0, 10)
    assert torch.allclose(model.predictor[0].weight, directpred_predictor(model.F, 0.1))
    assert not model.predictor[0].weight.requires_grad  # set, not trained


def test_nearest_neighbours_match_a_brute_force_search() -> None:
    features = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    for metric in ("cosine", "euclidean"):
        found = nearest_neighbors(features, k=3, metric=metric, chunk=16)
        for i in range(50):
            if metric == "cosine":
                score = [(features[i] @ features[j] / (features[i].norm() * features[j].norm())).item()
                         for j in range(50)]
            else:
                score = [-(features[i] - features[j]).pow(2).sum().item() for j in range(50)]
            score[i] = -math.inf
            assert found[i].tolist() == sorted(range(50), key=lambda j: -score[j])[:3]
    labels = torch.arange(50) % 2
    assert set(precision_at_k(found, labels)) == {"1", "3"}


def test_collapse_monitor_flags_constant_embeddings() -> None:
    healthy = embedding_health(torch.randn(256, 32))
    collapsed = embedding_health(torch.ones(256, 32) + 1e-4 * torch.randn(256, 32))
    assert healthy["collapsed"] == 0.0 and healthy["embedding_std"] > 0.8 and healthy["effective_rank"] > 20
    assert collapsed["collapsed"] == 1.0 and collapsed["embedding_std"] < 0.01


def test_rotnet_rotations() -> None:
    x = torch.arange(4.0).view(1, 1, 2, 2).repeat(4, 1, 1, 1)
    turned = rotate(x, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(turned[0], x[0]) and torch.equal(turned[2], x[0].flip(1, 2))
    config = RunConfig().replace({"method": "rotnet", "backbone": "mlp"})
    model = build_method(config, MethodContext(1, 16, 10))
    images, turns = model.make_views(Batch(torch.rand(3, 1, 16, 16), torch.zeros(3), torch.arange(3)),
                                     torch.Generator().manual_seed(0))
    assert images.shape[0] == 12 and turns.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3


@pytest.mark.parametrize("key,value", [("p", 1.5), ("w", -0.1), ("ema_momentum", 1.2)])
def test_probabilities_and_momentum_outside_the_unit_interval_are_rejected(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"params.{key} must be in \\[0, 1\\]"):
        RunConfig().replace({"method": "nn-byol", key: value, "neighbors": "x"})



QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "2", "--batch-size", "32", "--quiet",
         "--set", "eval.probe_epochs=2"]


def test_neighbors_then_nn_byol_and_mismatched_files(tmp_path: Path) -> None:
    ae = str(tmp_path / "ae")
    assert invoke("train", "ae", *QUICK, "--out", ae, "--no-eval").exit_code == 0
    result = invoke("neighbors", ae, "--metric", "euclidean", "--k", "5")
    assert result.exit_code == 0 and "precision@5" in result.output, result.output
    for mode in ("probabilistic", "weighted"):
        out = str(tmp_path / f"nn-{mode}")
        result = invoke("train", "nn-byol", *QUICK, "--out", out, "--set", "neighbors=" + ae, "--set", f"mode={mode}",
                        "--no-eval")
        assert result.exit_code == 0, result.output
    result = invoke("train", "nn-byol", *QUICK, "--out", str(tmp_path / "bad"), "--set", "neighbors=" + ae,
                    "--limit", "100")
    assert result.exit_code == 2 and "covers" in result.output and "100" in result.output
    assert not (tmp_path / "bad").exists()  # rejected before anything was written
    result = invoke("train", "nn-byol", *QUICK, "--out", str(tmp_path / "none"))
    assert result.exit_code == 2 and "selfsup neighbors" in result.output
    # the neighbours feed training only: a trained run stays evaluable once its neighbour file is gone (it is
    # named in config.yaml by a path relative to where training ran, so evaluating from elsewhere loses it too)
    for found in Path(ae).glob("neighbors-*.pt"):
        found.unlink()
    result = invoke("eval", str(tmp_path / "nn-probabilistic"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "nn-probabilistic" / "eval.json").exists()
    result = invoke("train", "nn-byol", *QUICK, "--out", str(tmp_path / "nn-probabilistic"), "--set",
                    "neighbors=" + ae, "--set", "mode=probabilistic", "--no-eval", "--resume")
    assert result.exit_code == 2 and "no neighbour file" in result.output  # training still needs them


def test_neighbor_file_from_other_images_is_rejected(tmp_path: Path) -> None:
    from test_contract import write_neighbors

    data, other = make_synthetic(64, seed=0), make_synthetic(64, seed=1)
    path = write_neighbors(other, tmp_path / "other.pt")
    config = RunConfig().replace({"method": "nn-byol", "backbone": "mlp", "neighbors": str(path)})
    model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))  # same size: builds
    with pytest.raises(ConfigError, match="other images or another order"):
        model.attach_data(data)


def test_eigenspace_tracking_writes_the_plot(tmp_path: Path) -> None:
    out = tmp_path / "dp"
    result = invoke("train", "directpred", *QUICK, "--out", str(out), "--no-eval", "--set", "track_every=2")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tracked = [r for r in records if "eigen_F" in r]
    assert len(tracked) >= 2 and len(tracked[0]["eigen_F"]) == 128
    assert (out / "plots" / "eigenspace.png").stat().st_size > 5000
    assert all("embedding_std" in r for r in records if "loss" in r)


def test_collapse_monitor_of_non_finite_embeddings_leaves_the_stop_to_the_trainer() -> None:
    from selfsup.ops.collapse import embedding_health

    health = embedding_health(torch.full((8, 4), float("nan")))
    assert math.isnan(health["embedding_std"]) and health["collapsed"] == 0.0


@pytest.mark.parametrize("bn, layers, norms, output_norm", [("none", 2, 0, False), ("hidden", 2, 1, False),
                                                             ("all", 2, 2, True), ("all", 3, 3, True)])
def test_projection_head_batch_norm_options(bn: str, layers: int, norms: int, output_norm: bool) -> None:
    """params.projection_bn: none, after the hidden layers (the default), or also after the output without
    affine parameters (SimCLR v2 / MoCo v3); a step of SimCLR and BYOL trains with each."""
    for method in ("simclr", "byol"):
        overrides = {"backbone": "mlp", "params.projection_bn": bn}
        if method == "simclr":
            overrides["params.projection_layers"] = layers
        elif layers != 2:
            continue
        model = build_method(RunConfig.for_method(method, overrides=overrides), MethodContext(1, 28, 64))
        found = [m for m in model.projector if isinstance(m, torch.nn.BatchNorm1d)]
        assert len(found) == norms
        last = list(model.projector)[-1]
        assert isinstance(last, torch.nn.BatchNorm1d) == output_norm and (not output_norm or not last.affine)
        images = torch.rand(16, 1, 28, 28)
        batch = Batch(images, torch.zeros(16, dtype=torch.long), torch.arange(16))
        output = model(batch, torch.Generator().manual_seed(0))
        output.loss.backward()
        assert torch.isfinite(output.loss)


def test_a_key_the_method_would_ignore_is_refused() -> None:
    with pytest.raises(ConfigError, match="params.eps is read by directpred and directcopy only"):
        build_method(RunConfig.for_method("byol", overrides={"backbone": "mlp", "params.eps": 0.3}),
                     MethodContext(1, 28, 64))
    build_method(RunConfig.for_method("directcopy", overrides={"backbone": "mlp", "params.eps": 0.3}),
                 MethodContext(1, 28, 64))


def test_multi_crop_views_and_losses() -> None:
    """augment.local_crops small crops beside the two global views (SwAV, DINO): SimCLR pairs each with both
    globals, BYOL regresses both globals' targets from them; without them the losses are the two-view ones."""
    images = torch.rand(16, 1, 28, 28)
    batch = Batch(images, torch.zeros(16, dtype=torch.long), torch.arange(16))
    for method in ("simclr", "byol", "simsiam"):
        base = RunConfig.for_method(method, overrides={"backbone": "mlp"})
        plain = build_method(base, MethodContext(1, 28, 64))
        crops = build_method(base.replace({"augment.local_crops": 3}), MethodContext(1, 28, 64))
        crops.load_state_dict(plain.state_dict())
        views = crops.make_views(batch, torch.Generator().manual_seed(0))
        assert len(views) == 5 and all(v.shape == images.shape for v in views)
        # the first two views are the same draws as without multi-crop, and so is the loss on them alone
        two = plain.make_views(batch, torch.Generator().manual_seed(0))
        assert torch.equal(views[0], two[0]) and torch.equal(views[1], two[1])
        assert torch.allclose(crops.views_loss(batch, views[:2]).loss, plain.views_loss(batch, two).loss)
        loss = crops.views_loss(batch, views).loss
        loss.backward()
        assert torch.isfinite(loss) and not torch.allclose(loss, plain.views_loss(batch, two).loss)
    from selfsup.methods import get_method

    with pytest.raises(ConfigError, match="does not train on multi-crop views"):
        get_method("barlow-twins").validate_run(RunConfig.for_method("barlow-twins",
                                                                     overrides={"augment.local_crops": 2}))


def test_simsiam_fixed_predictor_rate_keeps_the_predictor_at_the_base_rate_through_the_schedule() -> None:
    from selfsup.data import InMemorySource
    from selfsup.train import Trainer

    data = make_synthetic(64, seed=0)
    config = RunConfig().replace({"method": "simsiam", "backbone": "mlp", "dataset": "synthetic", "epochs": 3,
                                  "train.batch_size": 16, "optim.optimizer": "sgd", "optim.lr": 0.05,
                                  "optim.warmup_epochs": 1, "optim.warmup_min_steps": 0,
                                  "predictor_constant_lr": True})
    model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))
    trainer = Trainer(model, InMemorySource(data, 16, 0, "cpu"), config, torch.device("cpu"), progress=False)
    trainer.fit()
    predictor = {id(p) for p in model.predictor.parameters()}
    rates = {}
    for group in trainer.optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= predictor or not ids & predictor  # a group is all predictor or none of it
        if ids:
            rates.setdefault(bool(ids & predictor), set()).add(group["lr"])
    assert rates[True] == {0.05}  # the base rate after 12 steps of warm-up and cosine decay
    (scheduled,) = rates[False]  # step 11 of 12: 4 warm-up steps, then the 8th of 8 cosine steps
    assert scheduled == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == len(
        [p for p in model.parameters() if p.requires_grad])
    off = build_method(config.replace({"predictor_constant_lr": False}), MethodContext(1, 16, 10))
    assert off.constant_lr_parameters() == []
    with pytest.raises(ConfigError, match="set from F"):
        build_method(RunConfig().replace({"method": "directpred", "backbone": "mlp", "predictor_constant_lr": True}),
                     MethodContext(1, 16, 10))
