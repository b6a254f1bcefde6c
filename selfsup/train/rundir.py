"""Run directories: config.yaml, metrics.jsonl, checkpoints/last.pt, eval.json, plots/."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from selfsup.coercion import read_yaml
from selfsup.config import RunConfig
from selfsup.errors import ConfigError, RunDirectoryError
from selfsup.train.checkpoint import has_checkpoint, write_atomic

try:
    import fcntl
except ImportError:  # not on Windows: runs there are not locked
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# keys that change where or how fast a run goes, not what it computes
NEUTRAL_KEYS = {"data.data_dir", "train.device", "train.threads", "train.precision"}


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def with_defaults(raw: dict[str, Any], anchored: bool = False) -> dict[str, Any]:
    """A recorded config with the fields added since it was written filled in by their defaults (so a run from an
    older version still matches its own config) and, if ``anchored``, its relative paths made absolute from here
    (a run trained before paths were stored absolute); as it is when it no longer builds."""
    try:
        config = RunConfig.from_dict(raw)
        return (config.anchored() if anchored else config).to_dict()
    except (ConfigError, TypeError, ValueError):
        return raw


def config_differences(old: dict[str, Any], new: dict[str, Any], anchored: bool = False) -> list[str]:
    """How a recorded config ``old`` (its defaults filled in, its paths anchored if ``anchored``: ``with_defaults``)
    differs from ``new``, one ``key: old -> new`` line per key."""
    a, b = flatten(with_defaults(old, anchored)), flatten(new)
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def result_differences(old: dict[str, Any], new: dict[str, Any], eval_keys: bool = True) -> list[str]:
    """``config_differences`` that change a result: NEUTRAL_KEYS left out and, unless ``eval_keys``, the
    evaluation's own settings (``eval.*``)."""
    return [line for line in config_differences(old, new)
            if line.split(":")[0] not in NEUTRAL_KEYS and (eval_keys or not line.startswith("eval."))]


def evaluation_differences(evaluation: dict[str, Any], config: RunConfig, eval_keys: bool = True) -> list[str]:
    """How the config an eval.json was computed with (its ``config``) differs from ``config``, the run's own,
    leaving out NEUTRAL_KEYS and, unless ``eval_keys``, the evaluation's own settings (``selfsup eval --set``).
    Empty when they agree, or when the file predates the record (it says nothing)."""
    recorded = evaluation.get("config")
    if not isinstance(recorded, dict):
        return []
    return result_differences(recorded, config.to_dict(), eval_keys)


def prepare_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> bool:
    """Create or check ``run_dir``; returns whether there is a checkpoint to resume from.

    Refuses, without touching anything, a directory holding another run (a different config)
    or, without ``resume``, one that already holds this run.
    """
    config_path = run_dir / "config.yaml"
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if config_path.exists():
        stored = read_yaml(config_path) or {}
        if not isinstance(stored, dict):
            raise RunDirectoryError(f"{config_path} is not a run's config (it holds a {type(stored).__name__}, not a "
                                    "mapping); nothing was overwritten. Use another --out.")
        differences = config_differences(stored, config.to_dict(), anchored=True)
        if differences:
            raise RunDirectoryError(
                f"{run_dir} holds a run with a different config ({'; '.join(differences[:6])}"
                f"{' ...' if len(differences) > 6 else ''}); nothing was overwritten. Use another --out, "
                "or pass the same options to resume it."
            )
        if not resume and (has_checkpoint(checkpoint) or (run_dir / "metrics.jsonl").exists()):
            raise RunDirectoryError(
                f"{run_dir} already holds this run; nothing was overwritten. Pass --resume to continue it, "
                "or use another --out."
            )
    elif run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise RunDirectoryError(f"{run_dir} exists and is not empty but holds no run; use another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "plots").mkdir(exist_ok=True)
    write_atomic(config_path, config.to_yaml())
    return resume and has_checkpoint(checkpoint)


class RunLock:
    """An exclusive lock on a run directory while a process trains into it: ``flock`` on the directory itself (no
    lock file is written), which the kernel releases when the process ends, so a lock left by a killed run never
    blocks. A second process is refused naming the directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.fd = run_dir, None

    def acquire(self) -> None:
        """Take the lock if the directory exists and the lock is not held yet (call again once it is created)."""
        if self.fd is not None or not self.run_dir.is_dir() or fcntl is None:
            return
        fd = os.open(self.run_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunDirectoryError(f"{self.run_dir} is in use: another selfsup process is training into it now; "
                                    "nothing was changed. Wait for it to finish, or use another --out") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def read_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise RunDirectoryError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        return RunConfig.from_yaml(path)
    except ConfigError as error:
        raise RunDirectoryError(str(error)) from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return parse_metrics(path)


# the fields readers plot or compare: a record that has one must have a number there (and every record a step)
NUMERIC_FIELDS = {"step", "epoch", "loss", "lr", "images_per_s", "epoch_loss", "seconds", "monitor_knn",
                  "monitor_seconds", "train_seconds", "images_seen", "embedding_std", "effective_rank", "collapsed",
                  "monitor_raw_pixels_knn", "monitor_bank", "monitor_queries", "monitor_every"}


def _well_formed(record: dict[str, Any]) -> bool:
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return "step" in record and all(number(record[key]) for key in NUMERIC_FIELDS & record.keys())


def parse_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's records; a line that is cut short (a run killed mid-write), corrupt, or whose known fields
    are not numbers (a flipped key or value) is skipped with a warning naming the file and line, since every other
    line still stands."""
    records, bad = [], []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as error:
        raise RunDirectoryError(f"{path}: cannot read ({error.strerror or error})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and _well_formed(record):
            records.append(record)
        else:
            bad.append(number)
    if bad:
        log.warning("%s: %d unreadable line(s) skipped (line %s)", path, len(bad), ", ".join(map(str, bad[:5])))
    return records


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Written atomically (``write_atomic``): a reader never sees half a file."""
    write_atomic(path, json.dumps(payload, indent=2) + "\n")
