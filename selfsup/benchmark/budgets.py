"""The benchmark budgets (by images seen, so machines of different speed compare) and the reference config the
speed figures are timed on."""

from __future__ import annotations

from typing import Any

from selfsup.config import RunConfig

# Budgets are defined by images seen, so machines of different speed compare. The standard budget: 4 epochs over
# the 55,000 Fashion-MNIST training images left after the 5,000-image validation split (220,000 images seen;
# about 3 minutes of SimCLR + Conv6 training on a 2-core CPU with native bf16, about 30 on one without),
# evaluated on the test split with the probe and kNN fitted on those 55,000. "long" is the longer CPU budget.
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"limit": 2000, "epochs": 2, "speed_steps": 4, "eval_train": 10000},
    "standard": {"limit": None, "epochs": 4, "speed_steps": 12, "eval_train": None},
    "long": {"limit": None, "epochs": 20, "speed_steps": 12, "eval_train": None},
}


def budget_tag(budget: dict[str, Any]) -> str:
    """``10000x10`` for a subset budget, ``full-x4`` for epochs over the whole training set."""
    return f"{budget['limit'] or 'full-'}x{budget['epochs']}"


def reference_config(budget: dict[str, Any]) -> RunConfig:
    """The default method (RunConfig's: SimCLR) on Conv6 and Fashion-MNIST under ``budget``: what speed is timed on."""
    return RunConfig.for_method(RunConfig().method, overrides={"backbone": "conv6", "dataset": "fashion-mnist",
                                                               "limit": budget["limit"], "epochs": budget["epochs"]})
