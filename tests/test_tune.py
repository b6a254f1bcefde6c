"""`selfsup tune`: finds a clearly better value, resumes without redoing trials, never reads the test split, and
splits trials between processes sharing one study."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfsup.config import RunConfig
from selfsup.experiments.tune import parse_budget, tune
from selfsup.space import Choice, Range

TINY = {"dataset": "synthetic", "backbone": "mlp", "train.epochs": 2, "train.precision": "fp32",
        "train.device": "cpu", "train.compile": "off", "data.limit": 640}


def base(method: str = "simclr") -> RunConfig:
    return RunConfig.for_method(method, overrides=TINY)


def test_a_search_space_with_one_clearly_better_value_finds_it(tmp_path: Path) -> None:
    """AdamW at 0.05 wrecks this small MLP's representation (validation kNN far below the random-init level);
    at 1e-6 it keeps it: the search must tell them apart on the validation split."""
    space = {"optim.optimizer": Choice(("adamw", "sgd")), "optim.lr": Choice((0.05, 1e-6))}
    config = base().replace({"optim.optimizer": "adamw", "train.batch_size": 64})
    result = tune(config, tmp_path / "study", trials=6, space={"optim.lr": space["optim.lr"]}, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "study" / "trials.csv")))
    values = {row["optim.lr"]: float(row["val_knn"]) for row in rows if row["state"] == "complete"}
    assert set(values) == {"0.05", "1e-06"}, rows  # both were tried
    assert values["1e-06"] > values["0.05"] + 0.1
    assert result.best_params == {"optim.lr": 1e-6}
    recipe = RunConfig.from_yaml(tmp_path / "study" / "recipe.yaml")
    assert recipe.optim.lr == 1e-6 and recipe.optim.optimizer == "adamw" and recipe.eval.split == "test"


def test_an_interrupted_study_resumes_without_redoing_finished_trials(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import selfsup.api

    out = tmp_path / "study"
    space = {"optim.lr": Range(1e-4, 1e-2, log=True)}
    tune(base(), out, trials=2, space=space, progress=False)
    finished = {p.name: (p / "metrics.jsonl").stat().st_mtime_ns for p in (out / "trials").iterdir()}
    calls = []
    original = selfsup.api.train

    def interrupted(config, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(out_dir)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third trial
        return original(config, out_dir, **kwargs)

    monkeypatch.setattr(selfsup.api, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune(base(), out, trials=3, space=space, progress=False)
    tune(base(), out, trials=3, space=space, progress=False)  # resumes: the interrupted trial is run again
    assert len(calls) == 2 and Path(calls[1]).name == "0003"
    assert all((out / "trials" / name / "metrics.jsonl").stat().st_mtime_ns == mtime for name, mtime in finished.items())
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == {"complete": 3, "fail": 1}
    with pytest.raises(Exception, match="another method"):
        tune(base("byol"), out, trials=4, space=space, progress=False)


def test_no_trial_reads_the_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy in the dataset's own reader: every path to the files goes through it."""
    import dataclasses

    from selfsup.data import DATASETS

    splits = []
    spec = DATASETS.get("synthetic")

    def spy(folder, split, options):  # type: ignore[no-untyped-def]
        splits.append(split)
        return spec.read(folder, split, options)

    monkeypatch.setitem(DATASETS._items, "synthetic", dataclasses.replace(spec, read=spy))
    tune(base(), tmp_path / "study", trials=2, space={"params.temperature": Range(0.1, 0.5)}, progress=False)
    assert splits and set(splits) == {"train"}


def test_two_processes_sharing_one_study_split_the_trials(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    command = [sys.executable, "-m", "selfsup.cli", "tune", "simclr", "--dataset", "synthetic", "--backbone", "mlp",
               "--epochs", "3", "--limit", "640", "--precision", "fp32", "--device", "cpu", "--quiet", "--trials",
               "8", "--no-prune", "--out", str(out)]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    outputs = [process.communicate(timeout=600)[0].decode() for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    rows = list(csv.DictReader(open(out / "trials.csv")))
    done = [row for row in rows if row["state"] == "complete"]
    assert len(done) >= 8 and len({row["pid"] for row in done}) == 2, rows  # both processes ran trials
    assert len({row["trial"] for row in rows}) == len(rows)


def test_every_methods_search_space_names_its_own_config_keys() -> None:
    from selfsup.experiments.tune import getattr_path
    from selfsup.methods import METHODS

    for name in METHODS.names():
        needs = {"params.neighbors": "n.pt"} if METHODS.get(name).neighbors_from else {}  # checked when built
        config = RunConfig.for_method(name, overrides=needs)
        for key in METHODS.get(name).search_space:
            getattr_path(config, key)  # raises on a key the method does not have


def test_the_report_of_a_study_draws_it(tmp_path: Path) -> None:
    from selfsup.experiments.tune_report import build_tune_report

    out = tmp_path / "study"
    tune(base(), out, trials=3, space={"optim.lr": Range(1e-4, 1e-2, log=True), "train.batch_size": Choice((64, 128))},
         progress=False)
    outputs = build_tune_report(out)
    text = (out / "report.md").read_text()
    assert "random init" in text and "Best parameters" in text and "optim.lr" in text
    assert outputs["validation kNN against each parameter"].stat().st_size > 10_000


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("90s", 90), ("5", 300)])
def test_budgets(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


def test_a_bad_budget_or_no_trials_is_a_clear_error(tmp_path: Path) -> None:
    from test_trust import run_cli

    code, output = run_cli("tune", "simclr", "--budget", "soon", "--out", str(tmp_path / "s"))
    assert code == 2 and "--budget" in output and "Traceback" not in output
    code, output = run_cli("tune", "simclr", "--trials", "0", "--out", str(tmp_path / "s"))
    assert code == 2 and "--trials" in output and "Traceback" not in output


def test_the_first_trial_is_the_starting_recipe(tmp_path: Path) -> None:
    """A new study scores the recipe it starts from first (keys whose value lies outside the space are drawn), so
    tune.json says how the starting recipe did and the best is never worse at the trials' budget."""
    config = base().replace({"optim.lr": 0.0037, "train.batch_size": 64})
    space = {"optim.lr": Range(1e-4, 1e-2, log=True), "train.batch_size": Choice((32, 64)),
             "params.temperature": Range(0.6, 0.9)}  # the recipe's 0.2 lies outside: drawn
    tune(config, tmp_path / "study", trials=1, space=space, progress=False)
    row = next(csv.DictReader(open(tmp_path / "study" / "trials.csv")))
    assert row["start"] == "1" and float(row["optim.lr"]) == 0.0037 and row["train.batch_size"] == "64"
    assert 0.6 <= float(row["params.temperature"]) <= 0.9
    summary = json.loads((tmp_path / "study" / "tune.json").read_text())
    assert summary["start_trial"] == 0 and summary["start_val_knn"] == float(row["val_knn"])
