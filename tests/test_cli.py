"""The command line end to end on the built-in synthetic set."""

import json
from pathlib import Path

from conftest import invoke

QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "1", "--batch-size", "64", "--quiet",
         "--set", "eval.probe_epochs=2"]


def test_methods_lists_simclr_with_its_family() -> None:
    result = invoke("methods")
    assert result.exit_code == 0 and "simclr" in result.output and "joint-embedding" in result.output


def test_train_then_eval_then_resume(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    result = invoke("train", "simclr", *QUICK, "--out", out)
    assert result.exit_code == 0, result.output
    assert "linear probe accuracy" in result.output
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    # ten synthetic classes: chance is 0.1, and a probe fitted on shuffled labels or the wrong split stays near it
    assert evaluation["linear_probe"]["accuracy"] > 0.25 and evaluation["knn"]["accuracy"] > 0.2
    assert {"accuracy", "k"} <= set(evaluation["knn"]) and {"nmi", "ari", "accuracy"} <= set(evaluation["kmeans"])
    result = invoke("eval", out)
    assert result.exit_code == 0 and "kNN" in result.output
    again = invoke("train", "simclr", *QUICK, "--out", out)
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = invoke("train", "simclr", *QUICK, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output


def test_config_file_and_set(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("backbone: mlp\noptim:\n  lr: 0.002\ndata:\n  dataset: synthetic\n")
    result = invoke("train", "simclr", "--config", str(config), "--epochs", "1", "--batch-size", "64", "--quiet",
                    "--no-eval", "--set", "temperature=0.3", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    written = (tmp_path / "run" / "config.yaml").read_text()
    assert "lr: 0.002" in written and "temperature: 0.3" in written and "dataset: synthetic" in written
    assert not (tmp_path / "run" / "eval.json").exists()


def test_baseline_writes_both_references(tmp_path: Path) -> None:
    result = invoke("baseline", "--dataset", "synthetic", "--backbone", "mlp", "--out", str(tmp_path / "base"),
                    "--set", "probe_epochs=2")
    assert result.exit_code == 0, result.output
    for name in ("raw-pixels", "random-init"):
        assert "linear_probe" in json.loads((tmp_path / "base" / name / "eval.json").read_text())


def test_bad_input_exits_2_with_the_valid_names(tmp_path: Path) -> None:
    result = invoke("train", "nope")
    assert result.exit_code == 2 and "valid methods:" in result.output and "simclr" in result.output
    result = invoke("train", "simclr", "--dataset", "imagenet")
    assert result.exit_code == 2 and "fashion-mnist" in result.output
    result = invoke("train", "simclr", "--backbone", "vgg")
    assert result.exit_code == 2 and "resnet18" in result.output
    result = invoke("train", "simclr", "--lr", "0", "--out", str(tmp_path / "never"))
    assert result.exit_code == 2 and "lr must be > 0" in result.output
    result = invoke("train", "simclr", "--set", "augment.strength=2")
    assert result.exit_code == 2 and "strength" in result.output
    result = invoke("train", "simclr", "--set", "bogus=1")
    assert result.exit_code == 2 and "valid keys" in result.output
    assert not (tmp_path / "never").exists()


def test_python_and_the_command_line_resolve_the_same_config(tmp_path: Path) -> None:
    import selfsup

    options = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "1", "--batch-size", "64", "--lr", "0.01",
               "--limit", "256", "--quiet", "--no-eval", "--set", "temperature=0.3", "--set", "augment.strength=0.5"]
    assert invoke("train", "simclr", *options, "--out", str(tmp_path / "cli")).exit_code == 0
    selfsup.train("simclr", out=tmp_path / "py", evaluate=False, progress=False, dataset="synthetic", backbone="mlp",
                  epochs=1, batch_size=64, lr=0.01, limit=256, sets={"temperature": "0.3", "augment.strength": 0.5})
    written = (tmp_path / "cli" / "config.yaml").read_text()
    assert written == (tmp_path / "py" / "config.yaml").read_text()
    assert "temperature: 0.3" in written and "strength: 0.5" in written and "lr: 0.01" in written
