"""A person's mistakes get exit code 2 and one clear line; no file a user loads runs code; a corrupt last
checkpoint falls back to the previous one."""

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK, write_idx
from PIL import Image

from selfsup.cli import cli
from selfsup.coercion import read_yaml


def run_cli(*args: str):  # type: ignore[no-untyped-def]
    """The CLI in-process, catching exceptions: an escaped exception is shown as a traceback in the output."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(result.exception))
    return result.exit_code, output


def snapshot(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _bad_data(root: Path) -> None:
    """Fixtures the data cases point at: an empty folder, a truncated MNIST file, an undecodable image, ..."""
    (root / "empty").mkdir()
    mnist = root / "mnist"
    mnist.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        write_idx(mnist / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    truncated = mnist / "train-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    image_dir = root / "folder" / "train" / "cats"
    image_dir.mkdir(parents=True)
    (image_dir / "broken.png").write_bytes(b"not an image")
    (root / "malformed.yaml").write_text("optim:\n  lr: [0.1\n")
    (root / "misspelled.yaml").write_text("optm:\n  lr: 0.1\n")
    (root / "list.yaml").write_text("- simclr\n- byol\n")
    (root / "garbage.pt").write_bytes(b"\x80\x02 certainly not a neighbour file")
    for split, count in (("train", 6), ("test", 3)):  # a folder of one class: every score would be a trivial 1
        one_class = root / "oneclass" / split / "cats"
        one_class.mkdir(parents=True)
        for i in range(count):
            Image.new("L", (12, 12), 40 * i).save(one_class / f"{i}.png")
    (root / "listrun").mkdir()
    (root / "listrun" / "config.yaml").write_text("- not\n- a run\n")
    (root / "empty.yaml").write_text("backbone: mlp\ndata:\n  dataset: synthetic\nunknown_section: 1\n")


# (arguments, a fragment the message must hold); {run} is the shared run, {tmp} a fresh folder with _bad_data
CASES = [
    (["train", "nope"], "nope"),
    (["train", "simclr", "--dataset", "imagenet"], "imagenet"),
    (["train", "simclr", "--backbone", "vgg"], "vgg"),
    (["train", "simclr", "--lr", "0"], "lr"),
    (["train", "simclr", "--epochs", "0"], "epochs"),
    (["train", "simclr", "--batch-size", "0"], "batch_size"),
    (["train", "simclr", "--set", "augment.strength=2"], "strength"),
    (["train", "simclr", "--set", "bogus=1"], "bogus"),
    (["train", "simclr", "--set", "noequals"], "noequals"),
    (["train", "simclr", "--set", "eval.knn_k=abc"], "abc"),
    (["train", "simclr", "--config", "{tmp}/malformed.yaml"], "malformed.yaml"),
    (["train", "simclr", "--config", "{tmp}/misspelled.yaml"], "optm"),
    (["train", "simclr", "--config", "{tmp}/list.yaml"], "list.yaml"),
    (["train", "simclr", "--config", "{tmp}/empty.yaml"], "unknown_section"),
    (["train", "simclr", "--dataset", "mnist", "--data-dir", "{tmp}/empty", "--set", "data.download=false",
      "--out", "{tmp}/o"], "mnist"),
    (["train", "simclr", "--dataset", "mnist", "--data-dir", "{tmp}/mnist", "--set", "data.download=false",
      "--out", "{tmp}/o"], "train-images-idx3-ubyte"),
    (["train", "simclr", "--dataset", "image-folder", "--data-dir", "{tmp}/folder", "--out", "{tmp}/o"],
     "broken.png"),
    (["train", "simclr", *QUICK, "--set", "data.classes=[99]", "--out", "{tmp}/o"], "99"),
    (["train", "simclr", *QUICK, "--set", "data.val_size=5000", "--out", "{tmp}/o"], "val_size"),
    (["train", "simclr", *QUICK, "--out", "{run}"], "--resume"),
    (["train", "simclr", *QUICK, "--lr", "0.5", "--out", "{run}", "--resume"], "different config"),
    (["train", "simclr", *QUICK, "--out", "{tmp}/listrun", "--resume"], "listrun/config.yaml is not a run's config"),
    (["train", "nn-byol", *QUICK, "--set", "neighbors={tmp}/missing.pt", "--out", "{tmp}/o"], "missing.pt"),
    (["train", "nn-byol", *QUICK, "--set", "neighbors={tmp}/garbage.pt", "--out", "{tmp}/o"], "garbage.pt"),
    (["train", "nn-byol", *QUICK, "--set", "neighbors={run}", "--out", "{tmp}/o"], "no neighbour file"),
    (["eval", "{tmp}/empty"], "not a run directory"),
    (["eval", "{run}", "--set", "eval.knn_k=0"], "knn_k"),
    (["eval", "{run}", "--split", "val", "--set", "data.val_size=-3"], "val_size"),
    (["baseline", "--dataset", "nope"], "nope"),
    (["baseline", "--dataset", "image-folder", "--data-dir", "{tmp}/oneclass", "--out", "{tmp}/o"], "one class"),
    (["sweep", "simclr", "--grid", "bogus=1,2", "--out", "{tmp}/sweep"], "bogus"),
    (["sweep", "simclr", "--grid", "lr", "--out", "{tmp}/sweep"], "--grid"),
    (["report", "{tmp}/empty"], "holds no runs"),
    (["finetune", "{run}", "--labels", "2"], "--labels"),
    (["finetune", "{tmp}/empty", "--labels", "0.1"], "not a run directory"),
    (["interpolate", "{run}", "--a", "0", "--b", "1"], "no decoder"),
    (["sample", "{run}"], "vae"),
    (["anomaly", "{run}", "--normal-class", "0", "--any-training"], "no decoder"),
    (["anomaly", "{run}", "--normal-class", "0"], "data.classes=[0]"),
    (["neighbors", "{run}", "--metric", "manhattan"], "manhattan"),
    (["keys", "nope"], "nope"),
    (["compare", "{run}", "--baseline", "{tmp}/empty"], "eval.json"),
    (["bench", "accuracy", "--methods", "nope"], "nope"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_a_mistake_exits_2_with_one_clear_message(args: list[str], fragment: str, trained: Path,
                                                  tmp_path: Path) -> None:
    _bad_data(tmp_path)
    before = snapshot(trained)
    code, output = run_cli(*[a.replace("{run}", str(trained)).replace("{tmp}", str(tmp_path)) for a in args])
    assert "Traceback" not in output, output
    assert code == 2, output
    assert fragment in output, output
    assert snapshot(trained) == before, "a failed command changed the run directory"
    assert not (tmp_path / "o" / "checkpoints").exists(), "a failed command started a run"


def test_a_run_on_one_class_is_trained_but_not_scored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _bad_data(tmp_path)
    run = tmp_path / "run"
    code, output = run_cli("train", "ae", "--dataset", "image-folder", "--data-dir", str(tmp_path / "oneclass"),
                           "--backbone", "mlp", "--epochs", "1", "--batch-size", "2", "--quiet", "--out", str(run))
    assert code == 0 and "Traceback" not in output, output
    assert (run / "checkpoints" / "last.pt").exists() and not (run / "eval.json").exists()
    assert "one class (cats)" in caplog.text and "not evaluated" in caplog.text, caplog.text
    code, output = run_cli("eval", str(run))
    assert code == 2 and "one class" in output and "Traceback" not in output, output


def test_a_run_trained_on_a_relative_folder_is_evaluated_and_resumed_from_another_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's config.yaml stores data.data_dir absolute, so `selfsup eval RUN` works from any working folder;
    it used to keep the path as typed and find nothing from elsewhere."""
    for split, count in (("train", 8), ("test", 4)):
        for label in ("cats", "dogs"):
            folder = tmp_path / "work" / "photos" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("L", (12, 12), 20 * i + (120 if label == "dogs" else 0)).save(folder / f"{i}.png")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    args = ("train", "ae", "--dataset", "image-folder", "--data-dir", "photos", "--backbone", "mlp", "--batch-size",
            "4", "--epochs", "1", "--quiet", "--no-eval", "--out", "run")
    code, output = run_cli(*args)
    assert code == 0, output
    assert read_yaml(tmp_path / "work" / "run" / "config.yaml")["data"]["data_dir"] == str(tmp_path / "work" / "photos")
    code, output = run_cli(*args, "--resume")  # the same relative options still match the run
    assert code == 0, output
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, output = run_cli("eval", str(tmp_path / "work" / "run"))
    assert code == 0 and "Traceback" not in output, output


def test_an_interrupt_before_training_starts_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfsup import api

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # Ctrl-C while the data loads: no step run, nothing to save

    monkeypatch.setattr(api, "train", interrupted)
    code, output = run_cli("train", "simclr", *QUICK, "--out", str(tmp_path / "run"))
    assert code == 130 and "interrupted" in output and "Traceback" not in output, output


def test_the_table_is_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_cuda_device_on_a_machine_without_cuda_exits_2(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, output = run_cli("train", "simclr", *QUICK, "--device", "cuda", "--out", str(tmp_path / "run"))
    assert code == 2 and "CUDA is not available" in output and "Traceback" not in output


# -- nothing runs from a file -----------------------------------------------------------------------------

class Payload:
    """Unpickling this runs ``os.system``-like code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.makedirs, (str(self.marker),))


def test_a_crafted_checkpoint_is_refused_and_its_code_does_not_run(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    marker = tmp_path / "PAYLOAD-RAN"
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    state["context"] = Payload(marker)
    torch.save(state, run / "checkpoints" / "last.pt")
    code, output = run_cli("eval", str(run))
    assert code == 2 and "refused" in output and "last.pt" in output and "Traceback" not in output, output
    assert not marker.exists(), "the crafted checkpoint ran code"
    assert "previous.pt" not in output, "a refused file must not be skipped over silently"


def test_a_crafted_neighbour_file_is_refused_and_its_code_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    path = tmp_path / "neighbors-cosine.pt"
    torch.save({"indices": torch.zeros(4, 2, dtype=torch.long), "extra": Payload(marker)}, path)
    code, output = run_cli("train", "nn-byol", *QUICK, "--set", "neighbors=" + str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "refused" in output and str(path) in output and "Traceback" not in output, output
    assert not marker.exists()


def test_a_crafted_cifar_batch_is_refused_and_its_code_does_not_run(tmp_path: Path) -> None:
    from selfsup.data import DatasetFileError, load_dataset

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "PAYLOAD-RAN"
    rng = np.random.default_rng(0)
    for protocol in (2, 4, 5):  # numpy pickles arrays differently by protocol; every form must load
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [0, 1]}
            with open(folder / name, "wb") as handle:
                pickle.dump(batch, handle, protocol=protocol)
        assert load_dataset("cifar10", "test", data_dir=tmp_path, download=False).images.shape == (2, 3, 32, 32)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": Payload(marker), b"labels": [0]}, handle, protocol=2)
    with pytest.raises(DatasetFileError, match="test_batch.*refused"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert not marker.exists()
    code, output = run_cli("baseline", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out",
                           str(tmp_path / "base"), "--set", "data.download=false", "--set", "data.val_size=0")
    assert code == 2 and "test_batch" in output and not marker.exists(), output


# -- a corrupt last checkpoint costs one interval -----------------------------------------------------------

def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(trained: Path, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    from selfsup.api import load
    from selfsup.train.checkpoint import load_checkpoint

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last, previous = run / "checkpoints" / "last.pt", run / "checkpoints" / "previous.pt"
    assert previous.exists(), "training kept no previous checkpoint"
    good_last = torch.load(last, weights_only=True)
    good_previous = torch.load(previous, weights_only=True)
    assert good_previous["step"] < good_last["step"]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with caplog.at_level("WARNING"):
        state = load_checkpoint(last)
    assert state["step"] == good_previous["step"] and "previous" in caplog.text and "last.pt" in caplog.text
    method = load(run)
    for name, tensor in method.state_dict().items():
        assert torch.equal(tensor, good_previous["model"][name])
    caplog.clear()
    with caplog.at_level("WARNING"):  # the command line shows this warning on stderr
        code, output = run_cli("eval", str(run))
    assert code == 0 and "using the previous checkpoint" in caplog.text, output
    # --resume continues from the previous checkpoint and finishes the run
    code, output = run_cli("train", "simclr", *QUICK, "--out", str(run), "--resume", "--no-eval")
    assert code == 0, output
    resumed = torch.load(last, weights_only=True)
    assert resumed["step"] == good_last["step"] and resumed["finished"]
    # with both unreadable, the error names the last one
    for path in (last, previous):
        path.write_bytes(b"")
    code, output = run_cli("eval", str(run))
    assert code == 2 and "last.pt" in output and "Traceback" not in output, output


# -- results belong to their config ------------------------------------------------------------------------

def _tamper(run: Path, key: tuple[str, str], value: object) -> None:
    """eval.json claims a probe accuracy of 99 and records another value of ``key`` than the run's config."""
    import json

    path = run / "eval.json"
    evaluation = json.loads(path.read_text())
    evaluation["config"][key[0]][key[1]] = value
    evaluation["linear_probe"]["accuracy"] = 99.0
    path.write_text(json.dumps(evaluation))


def test_bench_evaluates_again_an_eval_json_of_another_config(trained: Path, tmp_path: Path) -> None:
    import json

    from selfsup.benchmark import current_evaluation

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    current = current_evaluation(run)
    assert current["linear_probe"]["accuracy"] == json.loads((trained / "eval.json").read_text())["linear_probe"][
        "accuracy"]  # agrees: reused as it is
    _tamper(run, ("optim", "lr"), 123.0)
    fresh = current_evaluation(run)
    assert fresh["linear_probe"]["accuracy"] < 1.0 and fresh["config"]["optim"]["lr"] != 123.0
    assert json.loads((run / "eval.json").read_text())["linear_probe"]["accuracy"] < 1.0  # rewritten


def test_report_refuses_the_numbers_of_an_eval_json_of_another_config(trained: Path, tmp_path: Path) -> None:
    import csv

    from selfsup.experiments.report import build_report

    folder = tmp_path / "runs"
    for name in ("a", "b", "c"):
        shutil.copytree(trained, folder / name)
    _tamper(folder / "b", ("params", "temperature"), 0.9)
    _tamper(folder / "c", ("eval", "knn_k"), 7)  # `selfsup eval --set eval.knn_k=7`: the evaluation's own setting
    build_report(folder, None, 10)
    rows = {row["run"]: row for row in csv.DictReader(open(folder / "results.csv"))}
    assert rows["b"]["status"] == "stale" and "temperature" in rows["b"]["error"] and rows["b"]["linear_probe"] == ""
    assert rows["a"]["status"] == "done" and 0.25 < float(rows["a"]["linear_probe"]) < 1.0
    assert rows["c"]["status"] == "done" and float(rows["c"]["linear_probe"]) == 99.0 and rows["c"]["eval.knn_k"] == "7"


def test_a_report_of_runs_committed_without_checkpoints_leaves_them_out_of_the_maps_only(
        trained: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """bench/results/runs holds runs without their checkpoints (gitignored): their tables and curves are reported,
    and the embedding maps, which need the model, show the runs that have one."""
    import csv

    from selfsup.experiments.report import build_report

    folder = tmp_path / "runs"
    shutil.copytree(trained, folder / "with")
    shutil.copytree(trained, folder / "without")
    shutil.rmtree(folder / "without" / "checkpoints")
    outputs = build_report(folder, "tsne", 40, baselines=False)
    rows = {row["run"]: row for row in csv.DictReader(open(outputs["csv"]))}
    assert rows["without"]["status"] == "done" and 0.25 < float(rows["without"]["linear_probe"]) < 1.0
    assert (folder / "with" / "embedding-map-tsne-40.npz").exists()
    assert not (folder / "without" / "embedding-map-tsne-40.npz").exists()
    assert "plots/embedding-tsne.png" in outputs["md"].read_text()
    assert "without has no checkpoint, so it is left out of the tsne maps" in caplog.text


def test_bench_marks_a_reused_run_whose_training_config_is_not_the_recipe_today(trained: Path,
                                                                              tmp_path: Path) -> None:
    """A run under bench/results/runs trained before its method's recipe changed (RotNet's, 2026-12-02) is not the
    recipe's figure: the table names it and says what differs, instead of passing it off as the recipe's."""
    from selfsup.benchmark import render
    from selfsup.benchmark.accuracy import method_config, recipe_differences

    budget = {"limit": None, "epochs": 4}
    same = tmp_path / "same"
    same.mkdir()
    (same / "config.yaml").write_text(method_config("rotnet", budget, {"eval.probe_epochs": 3}).to_yaml())
    assert recipe_differences(same, "rotnet", budget) == []  # evaluation settings are evaluated again, not flagged
    older = tmp_path / "older"
    older.mkdir()
    (older / "config.yaml").write_text(method_config("rotnet", budget, {"optim.lr": 0.001}).to_yaml())
    assert recipe_differences(older, "rotnet", budget) == ["optim.lr: 0.001 -> 0.007846"]
    # the recipe writes the study's lr 0.007845577... to four digits: a run with the unrounded value is the recipe's,
    # one 0.6 % off is not
    for lr, expected in ((0.007845577141205887, []), (0.0078, ["optim.lr: 0.0078 -> 0.007846"])):
        (older / "config.yaml").write_text(method_config("rotnet", budget, {"optim.lr": lr}).to_yaml())
        assert recipe_differences(older, "rotnet", budget) == expected
    # RotNet never reads augment.*: a run trained with its study's (no-op) strength is the recipe's run; for a method
    # that augments, the strength is a difference
    (older / "config.yaml").write_text(method_config("rotnet", budget, {"augment.strength": 0.5289}).to_yaml())
    assert recipe_differences(older, "rotnet", budget) == []
    (older / "config.yaml").write_text(method_config("simclr", budget, {"augment.strength": 0.5}).to_yaml())
    assert recipe_differences(older, "simclr", budget) == ["augment.strength: 0.5 -> 1.0"]
    elsewhere = recipe_differences(trained, "simclr", budget)  # trained on synthetic data with an MLP
    assert "data.dataset: 'synthetic' -> 'fashion-mnist'" in elsewhere and "backbone: 'mlp' -> 'conv6'" in elsewhere
    row = {"backbone": "conv6", "linear_probe": 0.9, "knn": 0.87, "kmeans_nmi": 0.59, "kmeans_accuracy": 0.5,
           "trained_with_another_config": ["optim.lr: 0.001 -> 0.007846"]}
    table = render({"machine": "m", "torch": "t", "budget": "standard", "date": "d", "accuracy": {"rotnet": row}})
    assert "| rotnet (older config) | conv6 | 0.9000 |" in table
    assert "`rotnet` run was trained before its recipe changed; it differs from what the benchmark trains today in " \
           "optim.lr: 0.001 -> 0.007846" in table
