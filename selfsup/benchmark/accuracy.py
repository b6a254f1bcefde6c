"""The accuracy benchmark: each method under a budget beside the raw-pixel and random-init baselines, reusing
finished runs whose eval.json belongs to their config."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from selfsup.benchmark.budgets import budget_tag
from selfsup.config import EvalConfig, RunConfig
from selfsup.eval.result import Evaluation
from selfsup.train.rundir import evaluation_differences, read_run_config, result_differences

log = logging.getLogger(__name__)


def method_config(method: str, budget: dict[str, Any], extra: dict[str, Any] | None = None) -> RunConfig:
    """The benchmark configuration of ``method``: its tuned recipe (Conv6 unless the recipe names another
    encoder), the budget."""
    return RunConfig.for_method(method, overrides={"dataset": "fashion-mnist", "limit": budget["limit"],
                                                   "epochs": budget["epochs"], **(extra or {})})


# a recipe writes a study's values to four significant digits: a run trained with the study's unrounded value is
# the recipe's run
RECIPE_DIGITS_TOLERANCE = 5e-4


def _rounded_like(trained: dict[str, Any], today: dict[str, Any]) -> dict[str, Any]:
    """``today`` with each float that agrees with ``trained``'s to RECIPE_DIGITS_TOLERANCE (relative) replaced by
    ``trained``'s."""
    out = dict(today)
    for key, value in today.items():
        old = trained.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = _rounded_like(old, value)
        elif (isinstance(value, float) and isinstance(old, float)
              and math.isclose(old, value, rel_tol=RECIPE_DIGITS_TOLERANCE)):
            out[key] = old
    return out


def recipe_differences(run_dir: Path, method: str, budget: dict[str, Any]) -> list[str]:
    """How the training config of a finished benchmark run differs from what the benchmark would train for
    ``method`` today (its recipe changed since): empty when they agree. Evaluation settings (evaluated again
    when they differ), keys that change only speed, the neighbour file's path, augment.* when neither the run's
    params nor today's let the method read it (``Method.reads_augment``), and floats that the recipe writes rounded
    (to four significant digits) are left out."""
    from selfsup.methods import METHODS

    run_config = read_run_config(run_dir)
    trained = run_config.to_dict()
    today_config = method_config(method, budget)
    today = _rounded_like(trained, today_config.to_dict())
    reads = any(METHODS.get(method).reads_augment(c.params) for c in (run_config, today_config))
    ignored = ("params.neighbors:",) + (() if reads else ("augment.",))
    if _keeps_the_last_weights(run_dir, run_config, today_config):
        ignored += ("train.keep_best:", "train.patience:")
    return [line for line in result_differences(trained, today, eval_keys=False) if not line.startswith(ignored)]


def _keeps_the_last_weights(run_dir: Path, trained: RunConfig, today: RunConfig) -> bool:
    """A run trained without train.keep_best whose recipe now has it: True when today's options would have kept the
    same weights, that is, its monitor measured at epoch ends only, its last measurement is its strict best, and
    train.patience would not have stopped it before."""
    from selfsup.train.rundir import parse_metrics
    from selfsup.train.trainer import kept_measurement

    if not today.train.keep_best or trained.train.keep_best or trained.monitor.every:
        return False
    values = [r["monitor_knn"] for r in parse_metrics(run_dir / "metrics.jsonl") if "monitor_knn" in r]
    kept, stopped = kept_measurement(values, today.train.patience)
    return len(values) == trained.train.epochs + 1 and kept == len(values) - 1 and stopped is None


def _mined_neighbors(source_method: str, budget: dict[str, Any], out: Path) -> Path:
    """Cosine neighbours on the benchmark subset in the representation of ``source_method``'s benchmark run
    (trained first if needed): the input of a method with ``neighbors_from``."""
    from selfsup.api import train
    from selfsup.experiments.neighbors import mine

    source_dir = out / "runs" / f"{source_method}-{budget_tag(budget)}"
    if not (source_dir / "eval.json").exists():
        train(method_config(source_method, budget), out=source_dir, resume=True)
    path = source_dir / "neighbors-cosine.pt"
    if not path.exists():
        mine(source_dir, "cosine", 10, path)
    return path


def _summary(evaluation: Evaluation, epochs: int = 1) -> dict[str, Any]:
    row: dict[str, Any] = {"linear_probe": evaluation.probe_accuracy, "knn": evaluation.knn_accuracy,
                           "kmeans_nmi": evaluation.nmi, "kmeans_accuracy": evaluation.kmeans_accuracy}
    if evaluation.reconstruction_mse is not None:
        row["reconstruction_mse"] = evaluation.reconstruction_mse
    if evaluation.training:
        row["seconds_per_epoch"] = round(evaluation.training["seconds"] / max(1, epochs), 1)
        row["images_seen"] = evaluation.training.get("images_seen")
    row["split"] = evaluation.scored_on
    return row


def current_evaluation(run_dir: Path) -> Evaluation:
    """The run's eval.json, evaluated again when it was computed with another config than the run's."""
    from selfsup.api import evaluate_run

    evaluation = Evaluation.read(run_dir / "eval.json")
    stale = evaluation_differences(evaluation.to_dict(), read_run_config(run_dir))
    if stale:
        log.warning("%s/eval.json was computed with another config (%s); evaluating the run again", run_dir,
                    "; ".join(stale[:3]))
        training = evaluation.training
        evaluation, _ = evaluate_run(run_dir)
        if training is not None:  # the training record stays the run's own
            evaluation.training = training
    return evaluation


def _current_baselines(base_dir: Path, names: tuple[str, ...]) -> dict[str, Evaluation] | None:
    """The baselines' eval.json files when they exist and were scored on the test split with today's defaults."""
    if not all((base_dir / name / "eval.json").exists() for name in names):
        return None
    found = {name: Evaluation.read(base_dir / name / "eval.json") for name in names}
    defaults = dataclasses.asdict(EvalConfig())
    for name, evaluation in found.items():
        recorded = (evaluation.baseline or {}).get("eval")
        if recorded is not None and {k: v for k, v in recorded.items() if k in defaults} != defaults:
            log.warning("%s/%s/eval.json was computed with other evaluation settings; measuring it again",
                        base_dir, name)
            return None
    return found


def bench_accuracy(budget: dict[str, Any], out: Path, methods: list[str] | None = None,
                   existing_only: bool = False) -> dict[str, Any]:
    """Each method under the budget, and the raw-pixel and random-init baselines, on the Fashion-MNIST test split.

    Finished runs under ``out/runs`` are reused; an unfinished one resumes from its checkpoint. With
    ``existing_only`` the table holds the finished runs and nothing is trained.
    """
    from selfsup.api import train
    from selfsup.experiments.baselines import baseline
    from selfsup.methods import METHODS

    methods = methods or [RunConfig().method]
    rows: dict[str, Any] = {}
    for method in methods:
        METHODS.get(method)
        backbone = METHODS.get(method).recipe.get("backbone", "conv6")
        run_dir = out / "runs" / f"{method}{'' if backbone == 'conv6' else '-' + backbone}-{budget_tag(budget)}"
        older: list[str] = []
        if (run_dir / "eval.json").exists():
            evaluation = current_evaluation(run_dir)
            older = recipe_differences(run_dir, method, budget)
        elif existing_only:
            continue
        else:
            extra = {}
            source = METHODS.get(method).neighbors_from
            if source is not None:  # its neighbours, mined on the same subset in the source method's representation
                extra["params.neighbors"] = str(_mined_neighbors(source, budget, out))
            config = method_config(method, budget, extra)
            evaluation = train(config, out=run_dir, resume=True).eval
        rows[method] = {"backbone": backbone, **_summary(evaluation, budget["epochs"])}
        if older:  # a reused run trained before the method's recipe changed: the row is that run's, said so
            log.warning("%s was trained with another config than %s's recipe today (%s)", run_dir, method,
                        "; ".join(older))
            rows[method]["trained_with_another_config"] = older
    for backbone in sorted({row["backbone"] for row in rows.values()} | {"conv6"}):
        base_dir = out / "runs" / ("baseline" if backbone == "conv6" else f"baseline-{backbone}")
        names = ("raw-pixels", "random-init")
        baselines = _current_baselines(base_dir, names) or baseline("fashion-mnist", backbone, out=base_dir)
        rows[f"random-init {backbone}"] = {"backbone": backbone, **_summary(baselines["random-init"])}
        rows["raw-pixels"] = {"backbone": None, **_summary(baselines["raw-pixels"])}
    return rows
