"""The reconstruction family: penalties and losses against naive references, decoders, stages, tools."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from conftest import invoke

from selfsup.api import build_method
from selfsup.config import RunConfig
from selfsup.data import Batch, InMemorySource, make_synthetic
from selfsup.decoders import DecoderShapeError, build_decoder, up_conv
from selfsup.errors import ConfigError
from selfsup.losses import (
    dense_jacobian_penalty,
    embedding_loss,
    gaussian_kl,
    jacobian_penalty,
    reconstruction_loss,
    weight_product_penalty,
)
from selfsup.methods import MethodContext
from selfsup.train import Trainer


def brute_force_jacobian_norm(f, x: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Mean over images of ||J||_F^2, each Jacobian built in full by torch.autograd.functional.jacobian."""
    norms = [torch.autograd.functional.jacobian(lambda v: f(v[None])[0], image).pow(2).sum() for image in x]
    return torch.stack(norms).mean()


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "identity"])
def test_closed_form_contractive_penalty_matches_the_full_jacobian(activation: str) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(12, 5)
    act = {"sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda t: t}[activation]
    x = torch.randn(4, 12)
    expected = brute_force_jacobian_norm(lambda v: act(layer(v)), x)
    assert torch.allclose(dense_jacobian_penalty(x, layer, activation), expected, rtol=1e-5)


def test_autograd_contractive_penalty_exact_and_hutchinson() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 36, 4))
    x = torch.rand(3, 1, 6, 6)
    expected = brute_force_jacobian_norm(encoder, x)
    exact, code = jacobian_penalty(encoder, x)
    assert torch.allclose(exact, expected, rtol=1e-5) and code.shape == (3, 4)
    vectors = torch.randn(4000, 3, 4, generator=torch.Generator().manual_seed(0))
    estimate, _ = jacobian_penalty(encoder, x, vectors)
    assert abs(estimate.item() - expected.item()) < 0.05 * expected.item()  # unbiased: close with many vectors
    exact.backward()  # differentiable: it can be a loss term
    assert encoder[0].weight.grad is not None and encoder[0].weight.grad.abs().sum() > 0


def test_weight_product_penalty_is_the_norm_of_the_product() -> None:
    layers = [nn.Linear(6, 4), nn.Linear(4, 3)]
    expected = torch.linalg.matrix_norm(layers[1].weight @ layers[0].weight)
    assert torch.allclose(weight_product_penalty(layers), expected)


def test_gaussian_kl_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-6)


def test_reconstruction_losses() -> None:
    logits, target = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert torch.allclose(reconstruction_loss(logits, target, "mse"), ((torch.sigmoid(logits) - target) ** 2).mean())
    bce = -(target * torch.log(torch.sigmoid(logits)) + (1 - target) * torch.log(1 - torch.sigmoid(logits)))
    assert torch.allclose(reconstruction_loss(logits, target, "bce"), bce.mean(), atol=1e-6)
    summed = ((torch.sigmoid(logits) - target) ** 2).flatten(1).sum(1).mean()
    assert torch.allclose(reconstruction_loss(logits, target, "mse", "sum"), summed)




@pytest.mark.parametrize("backbone", ["conv6", "mlp", "mlp-deep"])
def test_layerwise_stages_pair_encoder_and_decoder_shapes(backbone: str) -> None:
    config = RunConfig().replace({"method": "layerwise", "backbone": backbone})
    model = build_method(config, MethodContext(1, 28, 10))
    x = torch.rand(2, 1, 28, 28)
    for encoder_stage, decoder_stage in zip(model.encoder_stages, model.decoder_stages):
        y = encoder_stage(x)
        assert decoder_stage(y).shape[1:] == x.shape[1:]  # D_k inverts E_k's shape
        x = y


def test_decoder_that_cannot_restore_the_shape_is_caught_with_the_shapes() -> None:
    with pytest.raises(DecoderShapeError, match="3x3 map to 9x9"):
        up_conv(8, 8, 3, 9)
    with pytest.raises(ConfigError, match="Flatten has no decoder"):
        build_decoder(torch.nn.Flatten(), 8, 1, 28)


def test_layerwise_conv6_needs_the_symmetric_decoder() -> None:
    config = RunConfig().replace({"method": "layerwise", "backbone": "conv6", "decoder": "simple"})
    with pytest.raises(ConfigError, match="symmetric"):
        build_method(config, MethodContext(1, 28, 10))


def test_randomized_autoencoder_copies_the_transposed_decoder_weights() -> None:
    data = make_synthetic(64, seed=0)
    config = RunConfig().replace({"method": "rae", "backbone": "mlp", "dataset": "synthetic", "epochs": 6,
                                  "train.batch_size": 16, "finetune": False})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))
    assert model.num_stages == 2  # one stage per layer of the (512, 256) MLP
    before = [(e.weight.detach().clone(), d.weight.detach().clone()) for e, d in model.pairs]
    Trainer(model, InMemorySource(data, 16, seed=0, device="cpu"), config, torch.device("cpu"), progress=False).fit()
    for (encoder_layer, decoder_layer), (encoder_init, decoder_init) in zip(model.pairs, before):
        assert not torch.equal(decoder_layer.weight, decoder_init)  # W_d trained
        assert not torch.equal(encoder_layer.weight, encoder_init)  # the random W_e was replaced ...
        assert torch.equal(encoder_layer.weight, decoder_layer.weight.T)  # ... by W_d^T
        assert encoder_layer.bias.abs().sum() == 0 and decoder_layer.bias.abs().sum() == 0  # no biases


def test_rae_rejects_a_convolutional_backbone() -> None:
    with pytest.raises(ConfigError, match="fully connected layers only.*got conv6"):
        RunConfig().replace({"method": "rae", "backbone": "conv6"})


@pytest.mark.parametrize("denoising", [False, True])
@pytest.mark.parametrize("kind", ["mse", "l1", "cosine", "nt-xent", "barlow-twins"])
def test_parallel_loss_equals_its_formula(denoising: bool, kind: str) -> None:
    name = "parallel-dae" if denoising else "parallel-ae"
    config = RunConfig().replace({"method": name, "backbone": "mlp", "alpha": 0.3, "embedding_loss": kind})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(1, 16, 10))
    x, v1, v2 = torch.rand(3, 4, 1, 16, 16).unbind(0)
    output = model.parallel_loss(x, v1, v2)
    z1, z2 = model.encode(v1), model.encode(v2)
    t1, t2 = (x, x) if denoising else (v1, v2)
    rec = lambda v, t: ((torch.sigmoid(model.decoder(model.encode(v))) - t) ** 2).mean()  # noqa: E731
    if kind == "mse":
        emb = ((z1 - z2) ** 2).sum(1).mean()
    elif kind == "l1":
        emb = (z1 - z2).abs().sum(1).mean()
    else:
        emb = embedding_loss(z1, z2, kind, 0.5, 5e-3)
    expected = rec(v1, t1) + rec(v2, t2) + 0.3 * emb / 64
    assert torch.allclose(output.loss, expected, rtol=1e-5, atol=1e-6)


def test_autodecoder_infers_codes_for_unseen_images_by_optimisation() -> None:
    data = make_synthetic(96, seed=0)
    config = RunConfig().replace({"method": "autodecoder", "backbone": "mlp", "dataset": "synthetic", "epochs": 20,
                                  "train.batch_size": 32, "optim.schedule": "constant"})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))
    Trainer(model, InMemorySource(data, 32, 0, "cpu"), config, torch.device("cpu"), progress=False).fit()
    model.eval()
    unseen = make_synthetic(16, seed=1).images.float() / 255

    def error(steps: int) -> float:
        object.__setattr__(model.params, "infer_steps", steps)
        return model.image_errors(unseen).mean().item()

    assert error(30) < error(0)  # optimising the code improves on the encoder's guess
    assert model.embed(unseen).shape == (16, 128)



QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "2", "--batch-size", "32", "--quiet",
         "--set", "eval.probe_epochs=2"]


def test_vae_run_pictures_tools_and_errors(tmp_path: Path) -> None:
    run = str(tmp_path / "vae")
    assert invoke("train", "vae", *QUICK, "--out", run).exit_code == 0
    assert (tmp_path / "vae" / "plots" / "reconstructions.png").stat().st_size > 1000
    evaluation = json.loads((tmp_path / "vae" / "eval.json").read_text())
    assert 0 < evaluation["reconstruction"]["mse"] < 1
    result = invoke("sample", run, "--n", "8")
    assert result.exit_code == 0 and (tmp_path / "vae" / "plots" / "samples.png").exists()
    result = invoke("interpolate", run, "--a", "0", "--b", "3", "--steps", "5")
    assert result.exit_code == 0 and (tmp_path / "vae" / "plots" / "interpolate-test-0-3.png").exists()
    result = invoke("interpolate", run, "--a", "0", "--b", "100000")
    assert result.exit_code == 2 and "out of range" in result.output
    result = invoke("anomaly", run, "--normal-class", "1")  # trained on all classes: refused, with the command
    assert result.exit_code == 2 and "--set data.classes=[1]" in result.output and "AUROC" in result.output
    assert not (tmp_path / "vae" / "anomaly-class1.json").exists()
    result = invoke("anomaly", run, "--normal-class", "1", "--any-training")
    assert result.exit_code == 0 and "WARNING" in result.output and "AUROC" in result.output
    simclr = str(tmp_path / "simclr")
    assert invoke("train", "simclr", *QUICK, "--out", simclr, "--no-eval").exit_code == 0
    result = invoke("interpolate", simclr, "--a", "0", "--b", "1")
    assert result.exit_code == 2 and "no decoder" in result.output
    result = invoke("sample", simclr)
    assert result.exit_code == 2 and "no prior" in result.output


def test_anomaly_auroc_on_a_run_trained_on_the_normal_class(tmp_path: Path) -> None:
    run = str(tmp_path / "ae")
    result = invoke("train", "ae", *QUICK, "--out", run, "--no-eval", "--set", "data.classes=[0]",
                    "--epochs", "10")
    assert result.exit_code == 0, result.output
    result = invoke("anomaly", run, "--normal-class", "0")
    assert result.exit_code == 0 and "note:" not in result.output
    score = json.loads((tmp_path / "ae" / "anomaly-class0.json").read_text())
    assert score["trained_on_normal_only"]
    # AUROC = P(an anomaly's error > a normal image's error), counted pair by pair from errors computed here
    from selfsup.api import load
    from selfsup.data import load_dataset, to_float

    test = load_dataset("synthetic", "test")
    with torch.no_grad():
        images = to_float(test.images)
        errors = (load(run).reconstruct(images) - images).pow(2).flatten(1).mean(1).tolist()
    normal = [e for e, label in zip(errors, test.labels.tolist()) if label == 0]
    anomalous = [e for e, label in zip(errors, test.labels.tolist()) if label != 0]
    pairs = sum((a > n) + 0.5 * (a == n) for a in anomalous for n in normal)
    assert score["auroc"] == pytest.approx(pairs / (len(anomalous) * len(normal)), abs=1e-6)
    assert score["mean_error_normal"] == pytest.approx(sum(normal) / len(normal), rel=1e-5)


def test_dae_corrupts_its_input_and_reconstructs_the_clean_image() -> None:
    config = RunConfig().replace({"method": "dae", "backbone": "mlp", "noise": "salt-and-pepper",
                                  "noise_amount": 0.3})
    model = build_method(config, MethodContext(1, 16, 10))
    x = torch.rand(4, 1, 16, 16)
    batch = Batch(x, torch.zeros(4, dtype=torch.long), torch.arange(4))
    (noisy,) = model.make_views(batch, torch.Generator().manual_seed(0))
    changed = (noisy != x).float().mean().item()
    assert 0.15 < changed < 0.45
    rows = model.reconstruction_examples(x, torch.Generator().manual_seed(0))
    assert [label for label, _ in rows] == ["input", "corrupted", "reconstruction"]
    with pytest.raises(ConfigError, match="noise"):
        RunConfig().replace({"method": "dae", "noise": "fog"})


def test_contractive_penalty_cannot_be_rescaled_away() -> None:
    """Scaling the code by c and the decoder's entry by 1/c would keep the reconstruction and divide the penalty
    by c^2 if the entry were a free layer; tied to the bottleneck (W_dec = W^T), it scales with the code, so the
    reconstruction changes and the rescaling buys nothing."""
    config = RunConfig().replace({"method": "cae", "backbone": "mlp", "latent_dim": 8})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(1, 16, 10))
    x = torch.rand(6, 1, 16, 16)

    def terms() -> tuple[float, torch.Tensor]:
        penalty, code = model.penalty(x, None)
        return penalty.item(), model.decoder(code).detach()

    penalty, logits = terms()
    c = 0.1
    with torch.no_grad():
        model.bottleneck.weight.mul_(c)
        model.bottleneck.bias.mul_(c)
        entry = model.decoder[0][0]
        if isinstance(getattr(entry, "weight", None), nn.Parameter):  # a free entry layer: undo the scale there
            entry.weight.div_(c)
    scaled_penalty, scaled_logits = terms()
    assert scaled_penalty == pytest.approx(c**2 * penalty, rel=1e-4)  # the code's Jacobian did shrink by c^2 ...
    # ... but not for free: the reconstructions change, by a good part of how much they vary from image to image
    variation = (logits - logits.mean(0)).norm()
    assert (scaled_logits - logits).norm() > 0.3 * variation
    assert [name for name in model.state_dict() if name.startswith("decoder.0.")] == ["decoder.0.0.bias"]


def test_anomaly_scores_a_folder_into_a_csv_most_anomalous_first(tmp_path: Path) -> None:
    import csv

    import numpy as np
    from PIL import Image

    run = str(tmp_path / "ae")
    assert invoke("train", "ae", *QUICK, "--out", run, "--no-eval").exit_code == 0
    folder = tmp_path / "images"
    (folder / "odd").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "odd/c.png"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / name)
    result = invoke("anomaly", run, "--images", str(folder), "--out", str(tmp_path / "scores.csv"))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    errors = [float(r["reconstruction_error"]) for r in rows]
    assert len(rows) == 3 and errors == sorted(errors, reverse=True)
    assert {Path(r["file"]).name: r["class"] for r in rows} == {"a.png": "", "b.png": "", "c.png": "odd"}
    assert invoke("anomaly", run).exit_code == 2


def test_a_cae_step_that_needs_double_backward_is_never_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by `selfsup tune cae` (bench/tune_all.py): train.compile=auto timed a compiled Conv6 CAE step, and
    torch.compile cannot backpropagate through the Jacobian penalty's gradient (RuntimeError, a traceback).
    auto now keeps it eager without measuring; on is refused; the weight-product penalty still compiles."""
    import importlib

    decisions = importlib.import_module("selfsup.train.decisions")

    def no_measuring(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a step that cannot compile was timed compiled")

    monkeypatch.setattr(decisions, "compile_gain", no_measuring)
    config = RunConfig.for_method("cae", overrides={"backbone": "conv6", "train.compile": "auto"})
    model = build_method(config, MethodContext(1, 28, 10))
    assert not model.compilable()
    assert decisions.decide_compile(config, model, None, torch.device("cpu"), "fp32", False) is False
    with pytest.raises(ConfigError, match="cannot be compiled"):
        decisions.decide_compile(config.replace({"train.compile": "on"}), model, None, torch.device("cpu"), "fp32",
                                 False)
    weights = RunConfig.for_method("cae", overrides={"backbone": "mlp", "params.penalty": "weights"})
    assert build_method(weights, MethodContext(1, 28, 10)).compilable()


@pytest.mark.parametrize("representation", ["latent", "backbone"])
def test_the_vae_evaluates_the_representation_it_is_told(representation: str) -> None:
    """The seed's default is the posterior mean (64 values on this MLP); the searchable other choice is the
    backbone's 256 features, computed without the bottleneck."""
    config = RunConfig().replace({"method": "vae", "backbone": "mlp", "representation": representation})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(1, 16, 10)).eval()
    x = torch.rand(3, 1, 16, 16)
    features = model.embed(x)
    if representation == "latent":
        assert features.shape == (3, 64) and torch.equal(features, model.posterior(x)[0])
    else:
        assert features.shape == (3, 256) and torch.equal(features, model.backbone(x))
