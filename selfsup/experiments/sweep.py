"""Sweeps: a grid of configurations over one or more methods, each cell a normal run directory.

``plan`` validates every cell (unknown keys, values that do not parse) before anything runs;
``run_sweep`` skips finished cells, resumes an unfinished one from its checkpoint, and records a
failed cell's error in ``<cell>/error.txt`` before going on to the next.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from selfsup.coercion import read_yaml
from selfsup.config import RunConfig, valid_keys
from selfsup.errors import ConfigError
from selfsup.methods import get_method
from selfsup.train.checkpoint import has_checkpoint

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.yaml"
ERROR_FILE = "error.txt"


@dataclass(frozen=True)
class Cell:
    name: str  # the run directory's name inside the sweep folder
    method: str
    values: dict[str, str]  # the grid's values for this cell, as given
    config: RunConfig


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["alpha=1e-3,1e-2", "seed=0,1"]`` -> ``{"alpha": ["1e-3", "1e-2"], "seed": ["0", "1"]}``."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {spec!r}")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise ConfigError(f"--grid {key}: no values given")
        if key in grid:
            raise ConfigError(f"--grid {key} given twice")
        grid[key] = items
    if not grid:
        raise ConfigError("the grid is empty: give at least one --grid key=v1,v2,...")
    return grid


def expand_grid(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The product of the grid's value lists, in order (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combination)) for combination in itertools.product(*(grid[k] for k in keys))]


def cell_name(method: str, values: dict[str, str]) -> str:
    parts = [method] + [f"{key.split('.')[-1]}={value}" for key, value in values.items()]
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))


# a sweep tunes: its cells score on the validation split unless told otherwise (the test split is for the final
# figure: `selfsup eval RUN --split test` on the chosen cell); each method starts from its own tuned recipe
SWEEP_DEFAULTS: dict[str, Any] = {"eval.split": "val"}


def method_bases(methods: Sequence[str], recipe: str | None = None, file: str | Path | None = None,
                 options: dict[str, Any] | None = None, sets: dict[str, Any] | None = None) -> dict[str, RunConfig]:
    """Each method's base config for a sweep, resolved as ``selfsup train`` resolves it (``api.resolve_config``)
    with SWEEP_DEFAULTS just below the options: the command line and Python build the same cells."""
    from selfsup.api import resolve_config

    given = {**SWEEP_DEFAULTS, **(options or {})}
    return {method: resolve_config(method, recipe, file, given, sets) for method in methods}


def plan(methods: Sequence[str], grid: dict[str, list[str]],
         base: RunConfig | dict[str, RunConfig] | None = None) -> list[Cell]:
    """Every cell's config, built and validated now: a bad key or value fails before any run starts. ``base`` is
    one config for every method, or one per method; None: ``method_bases(methods)`` (each method's tuned recipe,
    scored on the validation split), as the command line does."""
    if not methods:
        raise ConfigError("no method given")
    bases = base if isinstance(base, dict) else ({m: base for m in methods} if base else method_bases(methods))
    cells = []
    for method in methods:
        base = bases[method]
        method_cls = get_method(method)
        for key in grid:  # a clearer message than the first failing cell's
            keys = valid_keys(method_cls.Config)
            short = [k.split(".")[-1] for k in keys]
            if key not in keys and key not in short:
                raise ConfigError(f"--grid key {key!r} is not a config key of {method}; valid keys: {', '.join(keys)}")
        for values in expand_grid(grid):
            try:
                config = base.replace({"method": method, **values})
            except ConfigError as error:
                raise ConfigError(f"{method} with {values}: {error}") from None
            cells.append(Cell(cell_name(method, values), method, values, config))
    names = [cell.name for cell in cells]
    if len(set(names)) != len(names):
        raise ConfigError("two grid cells map to the same folder name; use distinct values")
    return cells


def cell_status(run_dir: Path) -> str:
    if (run_dir / "eval.json").exists():
        return "done"
    if (run_dir / ERROR_FILE).exists():
        return "failed"
    if has_checkpoint(run_dir / "checkpoints" / "last.pt"):
        return "unfinished"
    return "pending"


def write_sweep_file(out: Path, methods: Sequence[str], grid: dict[str, list[str]], base: RunConfig) -> None:
    """``sweep.yaml``: what the sweep is, so ``report`` knows the varied keys and a rerun can be checked."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SWEEP_FILE
    record = {"methods": list(methods), "grid": grid, "base": base.to_dict()}
    if path.exists():
        previous = read_yaml(path) or {}
        if previous.get("methods") != record["methods"] or previous.get("grid") != record["grid"]:
            log.warning("%s held another grid (%s); cells already there are kept", path, previous.get("grid"))
    path.write_text(yaml.safe_dump(record, sort_keys=False))


def read_sweep_file(folder: Path) -> dict[str, Any] | None:
    path = folder / SWEEP_FILE
    return read_yaml(path) if path.exists() else None


def run_sweep(cells: Sequence[Cell], out: Path, train: Callable[..., Any] | None = None, progress: bool = True,
              echo: Callable[[str], None] = print) -> dict[str, str]:
    """Run every cell not yet finished; returns ``{cell name: done | failed}``.

    ``train`` is ``selfsup.api.train`` (injectable for tests). Ctrl-C stops the sweep (the running
    cell keeps its checkpoint); any other error is written to the cell's ``error.txt``.
    """
    if train is None:
        from selfsup.api import train
    from selfsup.train import TrainingInterrupted

    outcome: dict[str, str] = {}
    for index, cell in enumerate(cells, 1):
        run_dir = out / cell.name
        status = cell_status(run_dir)
        label = f"[{index}/{len(cells)}] {cell.name}"
        if status == "done":
            echo(f"{label}: done, skipped")
            outcome[cell.name] = "done"
            continue
        (run_dir / ERROR_FILE).unlink(missing_ok=True)  # a failed cell is tried again
        echo(f"{label}: {'resuming' if status == 'unfinished' else 'running'}")
        tic = time.perf_counter()
        try:
            train(cell.config, out=run_dir, resume=True, progress=progress)
        except (KeyboardInterrupt, TrainingInterrupted):
            raise
        except Exception as error:  # noqa: BLE001 - a failed cell is recorded and the sweep goes on
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / ERROR_FILE).write_text(f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}")
            echo(f"{label}: FAILED ({type(error).__name__}: {error}); recorded in {run_dir / ERROR_FILE}")
            outcome[cell.name] = "failed"
            continue
        echo(f"{label}: done in {time.perf_counter() - tic:.1f} s")
        outcome[cell.name] = "done"
    return outcome
