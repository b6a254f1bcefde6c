"""Trust as a class, not a list: the data named or a refusal, checks before the first step, readers that cannot
crash, one folder path, crash-consistent run directories, a collapsed run that stops, a validation split that fits
the data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_idx
from test_trust import QUICK, run_cli, snapshot


def _png_folder(root: Path, classes: dict[str, int], size: int = 12, grey: bool = False) -> Path:
    from PIL import Image

    rng = np.random.default_rng(len(classes))
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size, size) if grey else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


# -- 1. the data you named, or a clear refusal --------------------------------------------------------------

def test_a_folder_of_images_without_dataset_is_read_as_an_image_folder(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    folder = _png_folder(tmp_path / "my_images", {"cats": 30, "dogs": 30})
    with caplog.at_level("INFO"):
        code, output = run_cli("train", "simclr", "--data-dir", str(folder), "--backbone", "mlp", "--epochs", "1",
                               "--batch-size", "16", "--image-size", "8", "--quiet", "--precision", "fp32",
                               "--set", "eval.probe_epochs=2", "--out", str(tmp_path / "run"))
    assert code == 0, output
    assert "read as image-folder" in caplog.text and str(folder) in caplog.text
    data = json.loads((tmp_path / "run" / "eval.json").read_text())["data"]
    assert data["dataset"] == "image-folder" and data["source"] == str(folder.resolve())
    # 60 images: 12 test (20%), then 10% of the 48 training images for validation, class-balanced
    assert (data["train_images"], data["val_images"], data["fit_images"], data["test_images"]) == (48, 5, 43, 12)
    assert len(data["fingerprint"]) == 16
    assert (tmp_path / "run" / "plots" / "monitor.png").exists(), "a user's labelled folder gets the online monitor"


def test_the_fingerprint_changes_with_the_content_and_the_report_shows_the_source(tmp_path: Path) -> None:
    from selfsup.data.splits import labelled_splits

    folder = _png_folder(tmp_path / "a", {"x": 25, "y": 25})
    first = labelled_splits("image-folder", str(folder)).fingerprint
    assert labelled_splits("image-folder", str(folder)).fingerprint == first
    from PIL import Image

    Image.fromarray(np.zeros((12, 12, 3), dtype=np.uint8)).save(folder / "x" / "0.png")
    assert labelled_splits("image-folder", str(folder)).fingerprint != first


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_a_named_folder_that_does_not_hold_the_dataset_is_refused(dataset: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SELFSUP_DATA", str(tmp_path / "elsewhere"))  # a copy elsewhere must not be read instead
    code, output = run_cli("train", "simclr", "--dataset", dataset, "--data-dir", str(tmp_path / "empty"),
                           "--set", "data.download=false", "--out", str(tmp_path / "o"))
    assert code == 2 and str(tmp_path / "empty") in output and "t10k-images-idx3-ubyte" in output, output
    assert "Traceback" not in output and not (tmp_path / "o").exists()


def test_a_folder_without_dataset_that_holds_nothing_readable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    code, output = run_cli("train", "simclr", "--data-dir", str(tmp_path / "notes"), "--out", str(tmp_path / "o"))
    assert code == 2 and "notes" in output and "--dataset" in output and "Traceback" not in output, output


def test_idx_files_without_dataset_are_read_as_that_dataset(tmp_path: Path) -> None:
    from selfsup.data.catalog import detect_dataset

    for name in ("mnist", "fashion-mnist", "my-digits"):
        folder = tmp_path / name
        folder.mkdir()
        write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3))
    assert detect_dataset(tmp_path / "mnist") == "mnist"
    assert detect_dataset(tmp_path / "fashion-mnist") == "fashion-mnist"
    assert detect_dataset(tmp_path / "my-digits") == "fashion-mnist"  # the first registered of the same format


# -- 2. checks before the first step ------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--limit", "5"], "train.batch_size 64 is larger than the training set (5 images)"),
    (["--lr", "inf"], "optim.lr must be a finite number"),
    (["--set", "optim.lr=nan"], "optim.lr must be a finite number"),
    (["--set", "temperature=.inf"], "params.temperature must be a finite number"),
    (["--set", "augment.crop_scale=[0.2, nan]"], "augment.crop_scale"),
    (["--seed", "99999999999999999999"], "train.seed is out of range"),
    (["--lr", "6.5e249"], "optim.lr is out of range"),  # finite, but beyond float32: found by the fuzz campaign
    (["--epochs", "100000000"], "train.epochs"),
    (["--set", "optim.lr=!!python/object/apply:os.system ['true']"], "optim.lr"),
])
def test_values_are_checked_before_anything_runs(args: list[str], fragment: str, tmp_path: Path) -> None:
    code, output = run_cli("train", "simclr", *QUICK, *args, "--out", str(tmp_path / "o"))
    assert code == 2 and fragment in output and "Traceback" not in output, output
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_that_does_not_fit_the_edited_config_names_both_sides(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("backbone: mlp", "backbone: conv3"))
    before = snapshot(run)
    code, output = run_cli("eval", str(run))
    assert code == 2 and "backbone mlp" in output and "backbone conv3" in output and "last.pt" in output, output
    assert "Traceback" not in output and snapshot(run) == before


def test_evaluation_data_of_another_shape_than_the_model_is_refused(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    code, output = run_cli("eval", str(run), "--set", "data.dataset=digits")
    assert code == 2 and "3x16px" in output and "1x8px" in output and "Traceback" not in output, output


# -- 3. readers that cannot crash ---------------------------------------------------------------------------

def test_a_report_over_runs_with_one_cut_short_eval_json_writes_the_others(trained: Path, tmp_path: Path) -> None:
    import csv

    from selfsup.experiments.report import build_report

    folder = tmp_path / "runs"
    for name in ("a", "b", "c"):
        shutil.copytree(trained, folder / name)
    broken = folder / "b" / "eval.json"
    broken.write_bytes(broken.read_bytes()[:100])
    metrics = (folder / "c" / "metrics.jsonl").read_text()
    # a line cut short, a flipped key (found by the fuzz campaign: "step" -> "stdp"), a flipped value type
    (folder / "c" / "metrics.jsonl").write_text(metrics.replace('"step"', '"stdp"', 1) + '{"step": 3, "loss": "x"}\n'
                                                + '{"step": 9, "lo')
    build_report(folder, None, 10, baselines=False)
    rows = {row["run"]: row for row in csv.DictReader(open(folder / "results.csv"))}
    assert rows["b"]["status"] == "unreadable" and "b/eval.json" in rows["b"]["error"] and rows["b"]["knn"] == ""
    assert float(rows["a"]["knn"]) > 0.2 and float(rows["c"]["knn"]) > 0.2
    assert "synthetic" not in rows["a"]["data"] and "built in" in rows["a"]["data"]
    assert "Data" in (folder / "report.md").read_text()


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b'{"linear_probe": 3}', b'{"knn": {"accuracy": "x"}}',
                                     b"\xff\xfe\x00"])
def test_compare_names_a_broken_eval_json(content: bytes, trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "eval.json").write_bytes(content)
    code, output = run_cli("compare", str(run), "--baseline", str(run))
    assert code == 2 and "eval.json" in output and "Traceback" not in output, output


def test_a_two_byte_checkpoint_and_a_neighbour_file_without_its_fields_are_named(trained: Path,
                                                                                  tmp_path: Path) -> None:
    """Found by the fuzz campaign: a checkpoint cut to 2 bytes was a struct.error from torch's reader, and a
    neighbour file whose record lost a key (a flipped byte) was a KeyError in nn-byol."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for path in (run / "checkpoints" / "last.pt", run / "checkpoints" / "previous.pt"):
        path.write_bytes(bytes.fromhex("4ae0"))
    code, output = run_cli("eval", str(run))
    assert code == 2 and "last.pt" in output and "Traceback" not in output, output
    neighbors = tmp_path / "neighbors-cosine.pt"
    torch.save({"indices": torch.zeros(1600, 2, dtype=torch.long), "size": 1600, "datazet": "synthetic",
                "fingerprint": "0", "metric": "cosine"}, neighbors)
    code, output = run_cli("train", "nn-byol", *QUICK, "--set", "neighbors=" + str(neighbors), "--out", str(tmp_path / "o"))
    assert code == 2 and "neighbors-cosine.pt" in output and "dataset" in output and "Traceback" not in output, output


# -- 4. one folder path -------------------------------------------------------------------------------------

def test_a_grayscale_folder_streams_the_same_batches_as_in_memory(tmp_path: Path) -> None:
    from selfsup.data import InMemorySource
    from selfsup.data.folders import FolderOptions, read_folder
    from selfsup.data.streaming import StreamingFolderSource

    folder = tmp_path / "grey"
    _png_folder(folder, {"a": 10, "b": 10}, size=20, grey=True)  # no train/: 20% are the test split
    options = FolderOptions(image_size=16, resize="stretch")
    memory = InMemorySource(read_folder(folder, "train", options), 8, seed=2, device="cpu")
    stream = StreamingFolderSource(folder, options, 8, seed=2, device="cpu")
    assert stream.channels == 1 and len(stream) == 16
    for a, b in zip(memory.epoch(0), stream.epoch(0), strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    code, output = run_cli("train", "simclr", "--dataset", "image-folder", "--data-dir", str(folder), "--backbone",
                           "mlp", "--epochs", "1", "--batch-size", "8", "--image-size", "16", "--set",
                           "data.stream=true", "--quiet", "--no-eval", "--out", str(tmp_path / "run"))
    assert code == 0, output


# -- 5. crash-consistent run directories --------------------------------------------------------------------

def test_a_run_directory_in_use_is_refused_and_a_dead_lock_does_not_block(trained: Path, tmp_path: Path) -> None:
    from selfsup.train.rundir import RunLock

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    held = RunLock(run)
    held.acquire()
    before = snapshot(run)
    code, output = run_cli("train", "simclr", *QUICK, "--out", str(run), "--resume", "--no-eval")
    held.release()
    assert code == 2 and "in use" in output and str(run) in output and snapshot(run) == before, output
    # a process that took the lock and was killed leaves nothing that blocks
    script = f"from selfsup.train.rundir import RunLock; import os, signal; RunLock(__import__('pathlib').Path(" \
             f"{str(run)!r})).acquire(); os.kill(os.getpid(), signal.SIGKILL)"
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
    code, output = run_cli("train", "simclr", *QUICK, "--out", str(run), "--resume", "--no-eval")
    assert code == 0, output


def test_kill_9_during_a_checkpoint_write_then_resume_finishes(tmp_path: Path) -> None:
    """The process dies half-way through writing its third checkpoint; --resume finishes the run from the last
    complete one, and the half-written file is never read."""
    run = tmp_path / "run"
    args = ["train", "simclr", *QUICK, "--epochs", "4", "--set", "train.checkpoint_every=5", "--no-eval",
            "--out", str(run)]
    script = textwrap.dedent(f"""
        import importlib, os, signal, sys, torch
        checkpoint = importlib.import_module("selfsup.train.checkpoint")
        calls, original = [], torch.save
        def dying_save(state, path):
            calls.append(path)
            original(state, path)
            if len(calls) == 3:  # cut the file short, then die before the rename
                with open(path, "r+b") as handle:
                    handle.truncate(os.path.getsize(path) // 3)
                os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.torch.save = dying_save
        from selfsup.cli import main
        sys.argv = ["selfsup"] + {args!r}
        main()
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert subprocess.run([sys.executable, "-c", script], env=env).returncode == -signal.SIGKILL
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert not last["finished"] and last["step"] == 10
    assert list((run / "checkpoints").glob(".*.tmp")), "the half-written temporary is left beside, never renamed"
    code, output = run_cli("train", "simclr", *QUICK, "--epochs", "4", "--set", "train.checkpoint_every=5",
                           "--no-eval", "--out", str(run), "--resume")
    assert code == 0, output
    final = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert final["finished"] and final["step"] == 4 * (1600 // 64)


# -- 7. a collapsed run stops and says so -------------------------------------------------------------------

def test_a_collapsing_run_stops_early_keeps_the_checkpoint_before_it_and_is_marked(tmp_path: Path) -> None:
    """SGD at lr 0.02 with weight decay 45 shrinks every weight to nothing within a few steps (x0.1 a step): every
    image maps to the same point (the biases)."""
    run = tmp_path / "run"
    code, output = run_cli("train", "simclr", "--dataset", "synthetic", "--backbone", "mlp", "--epochs", "8",
                           "--batch-size", "64", "--quiet", "--precision", "fp32", "--lr", "0.02", "--set",
                           "optim.optimizer=sgd", "--set", "optim.weight_decay=45", "--set", "train.checkpoint_every=10",
                           "--out", str(run))
    assert code == 1 and "collapsed" in output and "selfsup tune" in output and "lower learning rate" in output, output
    assert "Traceback" not in output
    record = json.loads((run / "eval.json").read_text())["collapsed"]
    assert record["step"] < 8 * 25 and record["step"] - record["since_step"] + 1 == 50 and record["embedding_std"] < 0.1
    kept = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert kept["step"] < record["since_step"], "the checkpoint kept is from before the collapse"
    from selfsup.experiments.records import read_run

    assert read_run(run, tmp_path).status == "collapsed"
    code, output = run_cli("compare", str(run), "--baseline", str(run))
    assert code == 2 and "collapsed" in output, output


# -- 8. a validation split that fits the data ---------------------------------------------------------------

def test_the_default_validation_split_is_a_tenth_of_the_data(tmp_path: Path) -> None:
    from selfsup.data.splits import default_val_size, labelled_splits

    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 8000), ("t10k", 100)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    splits = labelled_splits("mnist", str(folder), download=False)
    assert len(splits.val) == 800 and len(splits.fit) == 7200
    assert default_val_size(torch.arange(60000) % 10) == 5000  # the committed Fashion-MNIST figures keep 5,000
    assert default_val_size(torch.arange(50000) % 10) == 5000
    assert default_val_size(torch.tensor([0] * 100 + [1] * 19)) == 0  # a class with 19 images: none
    assert default_val_size(torch.full((500,), -1)) == 0  # unlabeled: none
