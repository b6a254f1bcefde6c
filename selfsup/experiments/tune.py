"""`selfsup tune`: a recipe for your data, searched on the validation split.

Each trial is a short training run (the budget of the base config: its epochs and images) with values drawn from
the method's ``search_space`` (selfsup/space.py) over the method's tuned recipe. A trial is scored by the online
monitor's validation kNN at its end, never by the test split; the monitor's measurements during the trial
(``REPORTS`` of them, evenly spaced) feed optuna's median pruner, which stops a trial that is behind the median
of the finished ones at the same point. optuna's TPE sampler draws the values; the study lives in
``DIR/study.db`` (SQLite), so an interrupted search resumes where it stopped, and several processes or machines
can share one study (optuna's database storage; see README "Tune for your data").

Writes ``DIR/recipe.yaml`` (the best trial's full config, which `selfsup train --config` takes), ``DIR/tune.json``
(the best value and parameters, the trials' states, the parameters' importances) and ``DIR/trials.csv``; each
trial's run directory is ``DIR/trials/NNNN``. `selfsup report DIR` draws the study (experiments/tune_report.py).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfsup.config import RunConfig
from selfsup.errors import ConfigError, RunDirectoryError, UserError
from selfsup.methods import get_method
from selfsup.space import Choice, Range, Space, as_override
from selfsup.train import DivergenceError
from selfsup.train.checkpoint import write_atomic

log = logging.getLogger(__name__)

REPORTS = 4  # monitor measurements per trial after the untrained one (at 1/4, 1/2, 3/4 and the end)
STUDY_FILE = "study.db"
TUNE_FILE = "tune.json"


@dataclass
class TuneResult:
    best_value: float
    best_params: dict[str, Any]
    recipe: Path
    trials: dict[str, int]  # state -> count
    seconds: float  # this process's search time


def storage_url(out: Path, storage: str | None = None) -> str:
    """``storage`` (an SQLAlchemy database URL: several machines share a study through a database server), or the
    SQLite file in ``out``."""
    return storage or f"sqlite:///{(out / STUDY_FILE).resolve()}"


def suggest(trial: Any, key: str, dimension: Range | Choice) -> Any:
    """One value of ``dimension`` for config key ``key``; choices that are not plain values (tuples) are drawn by
    their text and mapped back."""
    if isinstance(dimension, Range):
        if dimension.integer:
            return trial.suggest_int(key, int(dimension.low), int(dimension.high), log=dimension.log)
        return trial.suggest_float(key, dimension.low, dimension.high, log=dimension.log)
    if dimension.plain:
        return trial.suggest_categorical(key, list(dimension.options))
    labels = {dimension.label(option): option for option in dimension.options}
    return labels[trial.suggest_categorical(key, list(labels))]


def base_record(base: RunConfig, space: Space) -> dict[str, Any]:
    """What a study is: the method, the base config and the space; a folder holding another study is refused."""
    return {"method": base.method, "base": base.to_dict(),
            "space": {key: repr(dimension) for key, dimension in sorted(space.items())}}


def open_storage(out: Path, url: str) -> Any:
    """The study's SQLite storage, with heartbeats so that a trial of a killed process is failed and run again.
    Two processes starting together may race to create its tables: the loser tries again."""
    import warnings

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    out.mkdir(parents=True, exist_ok=True)
    for attempt in range(10):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
                return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120, engine_kwargs=kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as error:
            if attempt == 9 or not isinstance(error, SQLAlchemyError) or not url.startswith("sqlite"):
                raise ConfigError(f"cannot open the study's storage {url}: {str(error).splitlines()[0][:200]}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def open_study(out: Path, base: RunConfig, space: Space, seed: int, prune: bool, url: str) -> Any:
    import optuna

    storage = open_storage(out, url)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0) if prune else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(study_name="selfsup-tune", storage=storage, direction="maximize",
                                    load_if_exists=True, pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:  # another process created it a moment ago
        study = optuna.load_study(study_name="selfsup-tune", storage=storage, pruner=pruner)
    # reproducible for one process; a process joining a study that others are running draws its own values
    existing = study.get_trials(deepcopy=False)
    running = any(t.state == optuna.trial.TrialState.RUNNING for t in existing)
    study.sampler = optuna.samplers.TPESampler(seed=seed * 1000 + len(existing) + (os.getpid() if running else 0),
                                               n_startup_trials=5)
    record = base_record(base, space)
    stored = study.user_attrs.get("study")
    if stored is None:
        study.set_user_attr("study", record)
    elif stored != json.loads(json.dumps(record)):
        raise RunDirectoryError(f"{out} holds a study of another method, base config or search space "
                                f"({stored.get('method')}); nothing was changed. Use another --out, or the same options "
                                "to resume it")
    return study


def tune(base: RunConfig, out: str | Path, trials: int | None = 20, seconds: float | None = None, prune: bool = True,
         seed: int = 0, space: Space | None = None, progress: bool = True, storage: str | None = None) -> TuneResult:
    """Search ``space`` (the method's ``search_space`` unless given) over ``base`` for ``trials`` trials in all
    (across every process sharing the study) or ``seconds`` of this process's time, whichever ends first."""
    import optuna
    from tqdm.auto import tqdm

    from selfsup.data.plan import training_data

    space = checked_request(base, trials, seconds, space)
    out = Path(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(out, base, space, seed, prune, storage_url(out, storage))
    base = base.replace({"eval.split": "val"})  # nothing a trial does touches the test split
    tic = time.perf_counter()
    # what counts towards --trials: a trial that failed (interrupted, or its process killed) is run again
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    images = len(training_data(base)) if not base.data.stream else base.train.batch_size  # logs the data once
    bar = tqdm(total=trials, initial=min(done, trials or done), unit="trial", desc=f"tune {base.method}",
               disable=not progress, dynamic_ncols=True)

    def after_trial(study: Any, trial: Any) -> None:
        bar.update(1)
        best = best_trial(study)
        if best is not None:
            bar.set_postfix(best_val_knn=f"{best.value:.4f}", refresh=False)

    callbacks = [after_trial]
    if trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(trials, states=finished))
    remaining = None if trials is None else max(0, trials - done)
    if not study.get_trials(deepcopy=False):
        enqueue_start(study, base, space)
    run_log = logging.getLogger("selfsup.run")
    quiet_level, run_log.level = run_log.level, logging.WARNING  # once is enough: every trial reads the same data
    try:
        if remaining != 0:
            study.optimize(lambda trial: run_trial(trial, base, space, out, images), n_trials=remaining,
                           timeout=seconds, callbacks=callbacks, gc_after_trial=True)
    finally:
        bar.close()
        run_log.setLevel(quiet_level)
    return write_outputs(study, base, out, time.perf_counter() - tic, storage_url(out, storage))


def starting_values(base: RunConfig, space: Space) -> dict[str, Any]:
    """The base recipe's value of every key of ``space`` that the space can take (as the study stores it)."""
    values: dict[str, Any] = {}
    for key, dimension in space.items():
        value = getattr_path(base, key)
        if isinstance(dimension, Range):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and dimension.low <= value <= dimension.high:
                values[key] = int(value) if dimension.integer else float(value)
        else:
            for option in dimension.options:
                if (list(option) if isinstance(option, tuple) else option) == value:
                    values[key] = dimension.label(option)
    return values


def enqueue_start(study: Any, base: RunConfig, space: Space) -> None:
    """A new study's first trial is the recipe it starts from (its values that lie in the space; optuna draws the
    others), so the study records how that recipe scores and its best is never worse at the trials' budget."""
    values = starting_values(base, space)
    if values:
        study.enqueue_trial(values, user_attrs={"start": True})


def checked_request(base: RunConfig, trials: int | None, seconds: float | None, space: Space | None) -> Space:
    """The space to search, once the request is known to make sense (before a study is opened)."""
    if trials is None and seconds is None:
        raise ConfigError("give --trials N or --budget TIME (for example 30m), or both")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if not base.monitor.enabled:
        raise ConfigError("selfsup tune scores trials with the online monitor; keep monitor.enabled=true")
    space = dict(space if space is not None else get_method(base.method).search_space)
    for key in space:  # every key must be a config key of this method (a typo fails before any trial)
        getattr_path(base, key)
    return space


def run_trial(trial: Any, base: RunConfig, space: Space, out: Path, images: int) -> float:
    """One trial: draw the values, train with the monitor reporting to the pruner, return the last validation
    kNN. A combination the method refuses, a divergence or a collapse ends the trial as pruned."""
    import optuna

    from selfsup import api

    overrides = {key: as_override(suggest(trial, key, dimension)) for key, dimension in space.items()}
    trial.set_user_attr("pid", os.getpid())
    try:
        config = base.replace(overrides)
    except ConfigError as error:  # e.g. a code size that the chosen representation cannot use
        trial.set_user_attr("error", str(error))
        raise optuna.TrialPruned() from None
    last: dict[str | int, float] = {}  # "value": the latest measurement; each reported point

    def on_monitor(step: int, total: int, value: float) -> None:
        last["value"] = value
        point = round(REPORTS * step / max(total, 1))
        if 0 < point < REPORTS and point not in last:  # the end is the trial's value, not an intermediate one
            last[point] = value
            trial.report(value, point)
            if trial.should_prune():
                raise optuna.TrialPruned()

    every = max(1, (images // config.train.batch_size) * config.train.epochs // REPORTS)
    started = time.perf_counter()
    try:
        # a trial is scored by its last measurement, and runs its whole budget: no early stop, no kept weights
        api.train(config.replace({"monitor.every": every, "train.keep_best": False, "train.patience": 0}),
                  out / "trials" / f"{trial.number:04d}", evaluate=False, progress=False, on_monitor=on_monitor)
    except (DivergenceError, UserError) as error:  # a diverged, collapsed or refused trial: a bad value
        trial.set_user_attr("error", str(error).splitlines()[0][:300])
        raise optuna.TrialPruned() from None
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
    return last["value"]


def getattr_path(config: RunConfig, key: str) -> Any:
    """The current value of a ``--set`` key (``optim.lr``, ``params.temperature``)."""
    from selfsup.config import resolve_key

    section, name = resolve_key(key, type(config.params))
    value = getattr(config if section is None else getattr(config, section), name)
    return list(value) if isinstance(value, tuple) else value


def best_trial(study: Any) -> Any:
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


def write_outputs(study: Any, base: RunConfig, out: Path, seconds: float, url: str) -> TuneResult:
    """recipe.yaml, tune.json and trials.csv from the study as it stands (every process's trials)."""
    import optuna

    best = best_trial(study)
    if best is None:
        raise ConfigError(f"no trial of the study in {out} has finished yet (each was pruned or failed; see "
                          f"{out / 'trials.csv'}); run more trials, or widen the budget (--epochs)")
    trials = study.get_trials(deepcopy=False)
    params = {key: as_override(value) for key, value in best.params.items()}
    space = get_method(base.method).search_space
    params = {key: _from_label(space.get(key), value) for key, value in params.items()}
    recipe = base.replace({**params, "eval.split": "test"})
    write_atomic(out / "recipe.yaml", f"# selfsup tune: trial {best.number} of {len(trials)}, validation kNN "
                                      f"{best.value:.4f}; train with: selfsup train {base.method} --config "
                                      f"{out / 'recipe.yaml'}\n" + recipe.to_yaml())
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    importances: dict[str, float] = {}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) >= 3:
        try:
            importances = {k: round(v, 4) for k, v in optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ZeroDivisionError) as error:  # too few distinct values
            log.warning("parameter importances not computed: %s", error)
    start = next((t for t in trials if t.user_attrs.get("start")), None)
    summary = {"method": base.method, "best_trial": best.number, "best_val_knn": best.value, "best_params": params,
               "start_trial": None if start is None else start.number,
               "start_val_knn": None if start is None else start.value,
               "trials": counts, "importances": importances, "seconds_this_process": round(seconds, 1),
               "trial_seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in trials), 1),
               "storage": url}
    write_atomic(out / TUNE_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    keys = sorted({key for trial in trials for key in trial.params})
    with open(out / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "start", "state", "val_knn", "last_reported", *keys, "seconds", "pid", "error"])
        for trial in trials:
            reported = trial.intermediate_values
            last = reported[max(reported)] if reported else ""
            writer.writerow([trial.number, int(bool(trial.user_attrs.get("start"))), trial.state.name.lower(),
                             "" if trial.value is None else trial.value, last,
                             *(trial.params.get(key, "") for key in keys), trial.user_attrs.get("seconds", ""),
                             trial.user_attrs.get("pid", ""), trial.user_attrs.get("error", "")])
    return TuneResult(best.value, params, out / "recipe.yaml", counts, seconds)


def _from_label(dimension: Any, value: Any) -> Any:
    """A tuple choice comes back from the study as its label; map it to the option."""
    if isinstance(dimension, Choice) and isinstance(value, str):
        for option in dimension.options:
            if isinstance(option, tuple) and dimension.label(option) == value:
                return option
    return value


def parse_budget(text: str) -> float:
    """'30m', '2h', '90s' or a number of minutes -> seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text) * 60
    except ValueError:
        raise ConfigError(f"--budget {text!r}: give a time such as 30m, 2h or 90s") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"--budget {text!r} must be a positive time")
    return seconds
