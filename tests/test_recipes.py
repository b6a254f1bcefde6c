"""Tuned recipes: RunConfig.for_method applies a method's recipe, `--recipe seed` keeps the seeds' settings,
options and --set still win, and a multi-method sweep gives each method its own recipe."""

from __future__ import annotations

import functools

import pytest

from selfsup.config import RunConfig
from selfsup.errors import ConfigError
from selfsup.experiments import sweep as sweeps
from selfsup.methods import METHODS, get_method


def test_for_method_applies_the_recipe_and_seed_keeps_the_dataclass_defaults() -> None:
    simclr = get_method("simclr")
    assert simclr.recipe, "SimCLR has a tuned recipe"
    tuned = RunConfig.for_method("simclr")
    assert tuned.recipe == "tuned"
    for key, value in simclr.recipe.items():
        section, name = key.split(".") if "." in key else (None, key)
        holder = tuned if section is None else getattr(tuned, section)
        assert getattr(holder, name) == pytest.approx(value) or getattr(holder, name) == value, key
    seed = RunConfig.for_method("simclr", "seed")
    assert seed.recipe == "seed" and seed.to_dict() == {**RunConfig().to_dict(), "recipe": "seed"}
    assert seed.optim.optimizer == "adam" and seed.train.batch_size == 256 and seed.params.temperature == 0.5
    # explicit values win over the recipe
    assert RunConfig.for_method("simclr", overrides={"lr": 0.01}).optim.lr == 0.01
    with pytest.raises(ConfigError, match="recipe"):
        RunConfig.for_method("simclr", "best")


def tuned_config(name: str) -> RunConfig:
    """The method's tuned config, with nn-byol's one required input given."""
    required = {"params.neighbors": "neighbors.pt"} if name == "nn-byol" else {}
    return RunConfig.for_method(name, overrides=required)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_recipe_builds(name: str) -> None:
    tuned_config(name)  # recipe keys are valid config keys of that method


def test_a_sweep_over_methods_gives_each_its_own_recipe() -> None:
    bases = {m: RunConfig.for_method(m, overrides={"dataset": "synthetic"}) for m in ("simclr", "ae")}
    cells = sweeps.plan(["simclr", "ae"], {"seed": ["0"]}, bases)
    by_method = {cell.method: cell.config for cell in cells}
    assert by_method["simclr"].optim == RunConfig.for_method("simclr").optim
    assert by_method["ae"].optim == RunConfig.for_method("ae").optim


def test_the_cli_recipe_option(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import invoke

    seed_config = tmp_path / "seed.yaml"
    seed_config.write_text(RunConfig.for_method("simclr", "seed").to_yaml())
    result = invoke("train", "simclr", "--config", str(seed_config), "--recipe", "tuned", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "disagree" in result.output
    assert not (tmp_path / "r").exists()


# Each method's tuned starting point, written out: (optimizer, lr, weight decay, batch, warm-up epochs). A change to
# a recipe must change this table too, with the measurement behind it (README "Defaults and why").
SGD_TUNED = ("sgd", 0.06, 5e-4, 128, 0.2)
SEED_ADAM = ("adam", 1e-3, 1e-6, 256, 0.0)
PINNED = {"simclr": SGD_TUNED, "byol": SGD_TUNED, "simsiam": SGD_TUNED, "directpred": SGD_TUNED,
          "directcopy": SGD_TUNED, "nn-byol": SGD_TUNED, "barlow-twins": SEED_ADAM,
          "rotnet": ("adam", 7.846e-3, 1.866e-5, 256, 1.292),
          "ae": SEED_ADAM, "dae": SEED_ADAM, "vae": SEED_ADAM, "cae": SEED_ADAM, "parallel-ae": SEED_ADAM,
          "parallel-dae": SEED_ADAM, "layerwise": SEED_ADAM, "autodecoder": ("sgd", 1.162e-4, 7.127e-5, 128, 1.224),
          "rae": SEED_ADAM}
# the SimCLR study's temperature, RotNet's study's classifier (its augmentation strength left at the default: RotNet
# does not augment), the auto-decoder study's code size, and rae's MLP (its layer-wise copying needs linear layers)
# BYOL's asymmetric views (bench/results/runs-tuned/PLAN-byol.md, levers (e) and (h)), BYOL's and nn-BYOL's;
# early stopping for SimSiam and RotNet (bench/results/robust-folder/PLAN-keep-best.md); the auto-decoder's
# representation without inference steps (bench/results/robust-folder/PLAN-autodecoder.md)
OTHER = {"simclr": {"params.temperature": 0.2}, "byol": {"augment.second_solarize_p": 0.2},
         "simsiam": {"augment.second_solarize_p": None, "train.keep_best": True, "train.patience": 10},
         "nn-byol": {"augment.second_solarize_p": 0.2},
         "rotnet": {"params.hidden": 256, "augment.strength": 1.0, "train.keep_best": True, "train.patience": 10},
         "autodecoder": {"params.latent_dim": 256, "params.infer_steps": 0}, "rae": {"backbone": "mlp"}}


@pytest.mark.parametrize("name", METHODS.names())
def test_each_tuned_recipe_is_the_measured_one(name: str) -> None:
    config = tuned_config(name)
    optim = config.optim
    got = (optim.optimizer, optim.lr, optim.weight_decay, config.train.batch_size, optim.warmup_epochs)
    assert got[0] == PINNED[name][0] and got[1:] == pytest.approx(PINNED[name][1:]), (name, got)
    assert config.backbone == OTHER.get(name, {}).get("backbone", "conv6")
    for key, value in OTHER.get(name, {}).items():  # each other pinned value, found by its --set key
        found = functools.reduce(getattr, key.split("."), config)
        assert found == (pytest.approx(value) if isinstance(value, float) else value), (name, key, found)
