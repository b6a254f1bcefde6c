"""The validation split and the online monitor: deterministic, disjoint from training, no test image read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import selfsup
from selfsup.config import EvalConfig, MonitorConfig, RunConfig
from selfsup.data import DATASETS
from selfsup.data.plan import evaluation_splits, training_data
from selfsup.data.splits import labelled_splits, validation_indices
from selfsup.errors import ConfigError
from selfsup.eval import evaluate_features, extract_features
from selfsup.eval.monitor import OnlineMonitor

TINY = {"backbone": "conv3", "dataset": "synthetic", "epochs": 2, "train.batch_size": 128, "log_every": 1,
        "eval.probe_epochs": 2, "train.precision": "fp32", "monitor.bank": 300, "monitor.queries": 200}


def image_keys(images: torch.Tensor) -> set[bytes]:
    return {bytes(image.flatten().tolist()) for image in images}


def test_validation_indices_are_deterministic_class_balanced_and_sorted() -> None:
    labels = torch.arange(10).repeat_interleave(100)  # 10 classes x 100
    first = validation_indices(labels, 250, seed=3)
    assert torch.equal(first, validation_indices(labels, 250, seed=3))
    assert not torch.equal(first, validation_indices(labels, 250, seed=4))
    assert torch.equal(first, first.sort().values) and first.unique().numel() == 250
    assert torch.bincount(labels[first], minlength=10).tolist() == [25] * 10
    uneven = torch.cat([torch.zeros(300, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    assert torch.bincount(uneven[validation_indices(uneven, 40)]).tolist() == [30, 10]  # proportional
    with pytest.raises(ConfigError, match="needs more than"):
        validation_indices(labels, 1000)


def test_training_never_sees_a_validation_image_and_the_split_is_the_same_for_every_run_seed() -> None:
    splits = labelled_splits("synthetic")
    assert splits.val is not None and len(splits.val) == DATASETS.get("synthetic").val_size
    val_keys = image_keys(splits.val.images)
    assert len(val_keys) == len(splits.val)  # distinct images, so disjointness below means something
    for seed in (0, 1):
        config = RunConfig().replace({**TINY, "seed": seed})
        trained_on = training_data(config)
        assert len(trained_on) == 2000 - len(splits.val)
        assert not image_keys(trained_on.images) & val_keys
        limited = training_data(config.replace({"limit": 500}))
        assert not image_keys(limited.images) & val_keys
    fit, scored = evaluation_splits(RunConfig().replace(TINY).data, EvalConfig(split="val"), 0)
    assert image_keys(scored.images) == val_keys and not image_keys(fit.images) & val_keys
    # val_size 0: the whole training split again
    assert len(training_data(RunConfig().replace({**TINY, "data.val_size": 0}))) == 2000


def test_split_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="eval.split"):
        EvalConfig(split="train")
    with pytest.raises(ConfigError, match="val_size"):
        training_data(RunConfig().replace({"dataset": "stl10", "data.val_size": 100, "data.download": False}))
    with pytest.raises(ConfigError, match="validation split"):
        evaluation_splits(RunConfig().replace({**TINY, "data.val_size": 0}).data, EvalConfig(split="val"), 0)


class Frozen(torch.nn.Module):
    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)


def test_the_monitor_knn_equals_the_offline_knn_on_the_same_images() -> None:
    splits = labelled_splits("synthetic")
    eval_config = EvalConfig(max_feature_dim=16)  # exercise the projection the evaluation applies to wide features
    monitor = OnlineMonitor(splits.fit, splits.val, MonitorConfig(bank=500, queries=150), eval_config,
                            torch.device("cpu"))
    torch.manual_seed(0)
    model = Frozen(selfsup.create_backbone("conv3", in_channels=3, image_size=16))
    measured = monitor.measure(model)["monitor_knn"]
    bank = extract_features(model.embed, monitor.bank, torch.device("cpu"))
    queries = extract_features(model.embed, monitor.queries, torch.device("cpu"))
    offline = evaluate_features(bank, monitor.bank.labels, queries, monitor.queries.labels, eval_config)
    assert measured == pytest.approx(offline["knn"]["accuracy"], abs=1e-5)
    assert len(monitor.bank) == 500 and len(monitor.queries) == 150
    assert not image_keys(monitor.bank.images) & image_keys(splits.val.images)
    assert model.training  # the monitor restores the training mode it found


@pytest.fixture
def test_split_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every split of the synthetic dataset read from now on."""
    reads: list[str] = []
    spec = DATASETS.get("synthetic")

    def spy(folder, split, options):  # type: ignore[no-untyped-def]
        reads.append(split)
        return spec.read(folder, split, options)

    monkeypatch.setitem(DATASETS._items, "synthetic", dataclasses.replace(spec, read=spy))
    return reads


def test_no_test_image_reaches_the_monitor_or_a_validation_run(tmp_path: Path, test_split_reads: list[str]) -> None:
    config = RunConfig().replace({**TINY, "eval.split": "val", "monitor.every": 5})
    result = selfsup.train(config, out=tmp_path / "run", progress=False)
    assert "test" not in test_split_reads and "train" in test_split_reads
    assert result.eval is not None and result.eval["split"]["scored_on"] == "val"
    assert result.eval["split"]["scored_images"] == 400
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    points = [m for m in metrics if "monitor_knn" in m]
    steps_per_epoch = (2000 - 400) // 128
    # before the first step, every 5 steps, at each epoch end (once where they coincide)
    expected = sorted({0, *range(5, 2 * steps_per_epoch + 1, 5), steps_per_epoch, 2 * steps_per_epoch})
    assert [m["step"] for m in points] == expected
    assert all(m["images_seen"] == m["step"] * 128 for m in points)
    seconds = [m["train_seconds"] for m in points]
    assert seconds == sorted(seconds) and seconds[0] == 0
    assert any("monitor_raw_pixels_knn" in m for m in metrics)
    assert (tmp_path / "run" / "plots" / "monitor.png").stat().st_size > 10_000
    training = result.eval["training"]
    assert training["monitor_measurements"] == len(points) and training["monitor_seconds"] > 0
    # the final figure: the test split, read only now
    evaluation, path = selfsup.evaluate_run(tmp_path / "run", {"eval.split": "test"})
    assert path.name == "eval-test.json" and evaluation["split"]["scored_on"] == "test"
    assert "test" in test_split_reads


def test_a_sweep_scores_on_the_validation_split(tmp_path: Path, test_split_reads: list[str]) -> None:
    from tests.conftest import invoke

    result = invoke("sweep", "simclr", "--grid", "params.temperature=0.5", "--out", str(tmp_path / "sweep"),
                    "--backbone", "conv3", "--dataset", "synthetic", "--epochs", "1", "--quiet",
                    "--set", "eval.probe_epochs=2", "--set", "monitor.enabled=false")
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "sweep" / "simclr-temperature=0.5" / "eval.json").read_text())
    assert evaluation["split"]["scored_on"] == "val" and "test" not in test_split_reads
