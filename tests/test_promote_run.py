"""bench/promote_run.py: the table's copy of an adopted recipe's run, made by the script as it was made by hand."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from selfsup.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@pytest.fixture(scope="module")
def promote_run():
    spec = importlib.util.spec_from_file_location("promote_run", ROOT / "bench" / "promote_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_copy(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs-tuned").mkdir()
    shutil.copytree(RESULTS / "runs-tuned" / "rotnet-full-x4", tmp_path / "runs-tuned" / "rotnet-full-x4")
    shutil.copytree(RESULTS / "runs" / "rotnet-seed-settings-full-x4", tmp_path / "runs" / "rotnet-full-x4")
    return tmp_path


def test_promote_makes_the_committed_rotnet_table_run(promote_run, tmp_path: Path) -> None:
    """The tuned recipe's table run (runs/rotnet-full-x4 until the fourteenth session, kept since as
    runs/rotnet-last-weights-full-x4) was copied by hand on 2026-12-03; the script gives the same files."""
    results = results_copy(tmp_path)
    assert promote_run.main(["rotnet", "--results", str(results), "--keep-old", "old"]) == 0
    made, committed = results / "runs" / "rotnet-full-x4", RESULTS / "runs" / "rotnet-last-weights-full-x4"
    # the same config, read with the fields added since the commit at their defaults (RotNet's crop_flip, ...)
    read = [RunConfig.from_yaml(run / "config.yaml").to_dict() for run in (made, committed)]
    assert read[0] == read[1]
    assert "  split: test\n" in (made / "config.yaml").read_text()
    assert (made / "metrics.jsonl").read_bytes() == (committed / "metrics.jsonl").read_bytes()
    made_eval = json.loads((made / "eval.json").read_text())
    assert made_eval == json.loads((committed / "eval.json").read_text())
    assert made_eval["knn"]["accuracy"] == pytest.approx(0.8876, abs=5e-5)  # the table's figure
    assert made_eval["split"]["scored_on"] == "test" and made_eval["training"]["precision"] == "fp32"
    kept = results / "runs" / "old" / "eval.json"
    assert kept.read_bytes() == (RESULTS / "runs" / "rotnet-seed-settings-full-x4" / "eval.json").read_bytes()


def test_promote_refuses_and_changes_nothing(promote_run, tmp_path: Path, capsys) -> None:
    results = results_copy(tmp_path)
    table_run = results / "runs" / "rotnet-full-x4" / "eval.json"
    before = table_run.read_bytes()
    assert promote_run.main(["rotnet", "--results", str(results)]) == 2  # no --keep-old for the run it replaces
    assert "--keep-old" in capsys.readouterr().err
    (results / "runs-tuned" / "rotnet-full-x4" / "eval-test.json").unlink()
    assert promote_run.main(["rotnet", "--results", str(results), "--keep-old", "old"]) == 2
    assert "eval-test.json" in capsys.readouterr().err
    assert table_run.read_bytes() == before
    assert sorted(p.name for p in (results / "runs").iterdir()) == ["rotnet-full-x4"]
