"""SimCLR learns: on a small real Fashion-MNIST subset it beats the random-init encoder on kNN."""

import pytest
from conftest import needs_fashion

import selfsup
from selfsup.config import EvalConfig


@pytest.mark.slow
@needs_fashion
def test_simclr_beats_the_random_init_encoder_on_knn() -> None:
    evaluation = {"eval.train_limit": 4000, "eval.test_limit": 1000, "eval.probe_epochs": 5}
    config = selfsup.RunConfig().replace({
        "dataset": "fashion-mnist", "backbone": "conv3", "limit": 3000, "epochs": 6, "train.batch_size": 256,
        "lr": 1e-3, "temperature": 0.2, **evaluation,
    })
    trained = selfsup.train(config, progress=False).eval
    reference = selfsup.baseline("fashion-mnist", "conv3", eval_config=EvalConfig(
        train_limit=4000, test_limit=1000, probe_epochs=5))["random-init"]
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
