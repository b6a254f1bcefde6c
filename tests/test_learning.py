"""SimCLR and BYOL learn: on a small real Fashion-MNIST subset they beat the random-init encoder on kNN."""

import json
from pathlib import Path

import pytest
from conftest import needs_fashion

import selfsup
from selfsup.config import EvalConfig


@pytest.mark.slow
@needs_fashion
def test_default_simclr_beats_the_random_init_encoder_on_validation_knn(tmp_path: Path) -> None:
    """The default (tuned) recipe, only the encoder and the budget changed, scored on the validation split: both
    the online monitor (its first measurement is this encoder untrained) and the evaluation against the baseline."""
    evaluation = {"eval.split": "val", "eval.train_limit": 4000, "eval.test_limit": 1000, "eval.probe_epochs": 5,
                  "monitor.bank": 4000, "monitor.queries": 1000}
    config = selfsup.RunConfig.for_method("simclr", overrides={
        "dataset": "fashion-mnist", "backbone": "conv3", "limit": 3000, "epochs": 6, **evaluation,
    })
    trained = selfsup.train(config, out=tmp_path / "run", progress=False).eval
    assert trained["split"]["scored_on"] == "val"
    monitor = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    monitor = [m["monitor_knn"] for m in monitor if "monitor_knn" in m]
    assert monitor[-1] > monitor[0] + 0.01, monitor
    reference = selfsup.baseline("fashion-mnist", "conv3", eval_config=EvalConfig(
        split="val", train_limit=4000, test_limit=1000, probe_epochs=5))["random-init"]
    assert trained["knn"]["accuracy"] > reference["knn"]["accuracy"] + 0.01, (trained["knn"], reference["knn"])


@pytest.mark.slow
@needs_fashion
def test_byol_beats_the_random_init_encoder_on_knn() -> None:
    evaluation = {"eval.train_limit": 4000, "eval.test_limit": 1000, "eval.probe_epochs": 5}
    config = selfsup.RunConfig().replace({
        "method": "byol", "dataset": "fashion-mnist", "backbone": "conv3", "limit": 3000, "epochs": 6,
        "train.batch_size": 128, "lr": 1e-3, **evaluation,
    })
    trained = selfsup.train(config, progress=False).eval
    reference = selfsup.baseline("fashion-mnist", "conv3", eval_config=EvalConfig(
        train_limit=4000, test_limit=1000, probe_epochs=5))["random-init"]
    assert trained["knn"]["accuracy"] > reference["knn"]["accuracy"] + 0.01, (trained["knn"], reference["knn"])
