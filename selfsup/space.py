"""Search spaces for `selfsup tune`: what each config key may take, declared by each method next to its recipe.

A space maps a config key (``--set`` form: ``optim.lr``, ``params.temperature``) to one of three kinds of
dimension; ``selfsup.experiments.tune`` turns each into an optuna suggestion, so a method declares its space and
no shared code changes. Families share a base space (``OPTIMISATION``, ``VIEWS``); a method adds its own keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """A number in [low, high]; ``log``: sampled on a log scale (learning rates, weights); ``integer``: whole."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad range [{self.low}, {self.high}] (log={self.log})")


@dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, strings, booleans, or tuples such as a crop scale)."""

    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) < 2:
            raise ValueError(f"a choice needs two options or more, got {self.options!r}")

    @property
    def plain(self) -> bool:
        """Whether a study stores the options as they are (None, bool, int, float, str); else by their labels."""
        return all(option is None or isinstance(option, (bool, int, float, str)) for option in self.options)

    def label(self, option: Any) -> Any:
        """What a study stores for ``option``: the option itself in a plain choice, else its text."""
        if self.plain:
            return option
        return str(list(option)) if isinstance(option, tuple) else str(option)


Dimension = Range | Choice
Space = dict[str, Dimension]

# The optimisation every method is searched over: around the SimCLR study's optimum (SGD 0.06, wd 5e-4, batch
# 128) and the seeds' Adam 1e-3, wide enough to find a recipe for other data.
OPTIMISATION: Space = {
    "optim.optimizer": Choice(("sgd", "adam", "adamw")),
    "optim.lr": Range(1e-4, 0.3, log=True),
    "optim.weight_decay": Range(1e-6, 1e-3, log=True),
    "optim.warmup_epochs": Range(0.0, 2.0),
    "train.batch_size": Choice((64, 128, 256)),
}
# The views of the joint-embedding methods: augmentation strength and the random crop's smallest area.
VIEWS: Space = {
    "augment.strength": Range(0.25, 1.0),
    "augment.crop_scale": Choice(((0.08, 1.0), (0.2, 1.0), (0.4, 1.0))),
}


# multi-crop (the methods with ``multi_crop``): how many small crops beside the two global views
MULTI_CROP: Space = {"augment.local_crops": Choice((0, 2, 4))}


def as_override(value: Any) -> Any:
    """A sampled value as a config override (optuna stores a tuple choice as a list)."""
    return tuple(value) if isinstance(value, list) else value
