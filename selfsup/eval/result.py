"""The evaluation result: what the protocols measured, as one typed object; ``to_dict()`` is ``eval.json``.

Readers (the command line, the benchmarks, reports, ``compare``) use the properties (``probe_accuracy``,
``knn_accuracy``, ``nmi``, ``scored_on``, ...), not string keys; ``from_dict`` reads an ``eval.json`` back,
keeping any key it does not know in ``extra``. Item access (``evaluation["knn"]["accuracy"]``) is kept for
scripts written against the plain dictionary.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfsup.coercion import read_json
from selfsup.errors import RunDirectoryError

# the headline figures: (column, property), higher is better; the report's and compare's columns
HEADLINE = [("linear_probe", "probe_accuracy"), ("knn", "knn_accuracy"), ("kmeans_nmi", "nmi"),
            ("kmeans_ari", "ari"), ("kmeans_accuracy", "kmeans_accuracy")]


@dataclass
class Evaluation:
    # the protocols' figures; empty for a run that collapsed and was not evaluated (``collapsed`` says when)
    linear_probe: dict[str, Any] = field(default_factory=dict)  # accuracy, train_accuracy, epochs
    knn: dict[str, Any] = field(default_factory=dict)  # accuracy, k, temperature
    kmeans: dict[str, Any] = field(default_factory=dict)  # nmi, ari, accuracy, inertia_per_sample, clusters
    features: dict[str, Any] = field(default_factory=dict)  # dim, knn_kmeans_dim, train/test size, precision
    seconds: dict[str, float] = field(default_factory=dict)  # per protocol, and the feature extraction
    split: dict[str, Any] | None = None  # scored_on, fitted_on, sizes (api.split_description)
    config: dict[str, Any] | None = None  # the run config these numbers belong to
    reconstruction: dict[str, Any] | None = None  # mse on the scored split (methods that reconstruct)
    training: dict[str, Any] | None = None  # seconds, steps, images seen, precision, device, monitor cost
    baseline: dict[str, Any] | None = None  # what baseline this is (raw pixels, random init) and its settings
    data: dict[str, Any] | None = None  # the data source: dataset, folder, images per split, content fingerprint
    collapsed: dict[str, Any] | None = None  # the training stopped on a collapsed representation: step, statistics
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a read eval.json this class does not know

    @property
    def probe_accuracy(self) -> float:
        return float(self.linear_probe["accuracy"])

    @property
    def knn_accuracy(self) -> float:
        return float(self.knn["accuracy"])

    @property
    def nmi(self) -> float:
        return float(self.kmeans["nmi"])

    @property
    def ari(self) -> float:
        return float(self.kmeans["ari"])

    @property
    def kmeans_accuracy(self) -> float:
        return float(self.kmeans["accuracy"])

    @property
    def reconstruction_mse(self) -> float | None:
        return None if self.reconstruction is None else float(self.reconstruction["mse"])

    @property
    def scored_on(self) -> str:
        """The split the figures were scored on: test or val (files from before the validation split: test)."""
        return (self.split or {}).get("scored_on", "test")

    @property
    def training_seconds(self) -> float | None:
        return None if self.training is None else self.training.get("seconds")

    @property
    def has_figures(self) -> bool:
        """False for the record of a run that stopped on a collapse before any evaluation."""
        return bool(self.linear_probe)

    @classmethod
    def read(cls, path: str | Path) -> Evaluation:
        """An eval.json file, checked: a file cut short, corrupt or of another shape is a RunDirectoryError naming
        it (readers that go on over many runs catch it and name the file)."""
        raw = read_json(path, "eval.json")
        try:
            evaluation = cls.from_dict(raw)
            for item in dataclasses.fields(cls):
                value = getattr(evaluation, item.name)
                if value is not None and not isinstance(value, dict):
                    raise TypeError(f"{item.name} is a {type(value).__name__}")
            if not evaluation.has_figures and not evaluation.collapsed:
                raise KeyError("linear_probe")
            if evaluation.has_figures:
                figures = [*evaluation.headline().values(), evaluation.reconstruction_mse]
                if not all(f is None or math.isfinite(f) for f in figures):
                    raise ValueError("a figure is not a finite number")
            evaluation.scored_on, evaluation.training_seconds  # noqa: B018  (their sections are readable)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RunDirectoryError(f"{path}: not an eval.json selfsup wrote ({error}); it is corrupt or was edited; "
                                    "`selfsup eval RUN` writes it again") from None
        return evaluation

    def headline(self) -> dict[str, float]:
        return {column: getattr(self, name) for column, name in HEADLINE}

    def to_dict(self) -> dict[str, Any]:
        """eval.json: the sections that are present, then any extra keys."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**{key: value for key, value in out.items() if value is not None}, **self.extra}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Evaluation:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{key: raw[key] for key in names if key in raw},
                   extra={key: value for key, value in raw.items() if key not in names})

    # -- the plain dictionary's reading interface --------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key) if key in self.__dataclass_fields__ and key != "extra" else self.extra.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        try:
            self[str(key)]
        except KeyError:
            return False
        return True

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


def collapse_note(evaluation: Evaluation) -> str:
    """One line on a run that stopped because its representation collapsed ('' for one that did not)."""
    record = evaluation.collapsed
    if not record:
        return ""
    std, rank = record.get("embedding_std", math.nan), record.get("effective_rank", math.nan)
    return f"collapsed at step {record.get('step', '?')} (embedding std {std:.3f}, effective rank {rank:.1f}); stopped"
