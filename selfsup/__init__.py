"""selfsup: self-supervised representation learning on images.

>>> import selfsup
>>> config = selfsup.RunConfig(method="simclr", backbone="conv6")
>>> result = selfsup.train(config, out="runs/simclr")          # doctest: +SKIP
>>> model = selfsup.load("runs/simclr"); z = model.embed(images)  # doctest: +SKIP
"""

from selfsup.api import evaluate_run, load, train
from selfsup.backbones import create_backbone
from selfsup.config import AugmentConfig, DataConfig, EvalConfig, OptimConfig, RunConfig, TrainConfig
from selfsup.data import load_dataset
from selfsup.experiments.baselines import baseline
from selfsup.experiments.embed import embed_images as embed
from selfsup.methods import METHODS, get_method

__version__ = "0.1.0"

__all__ = [
    "METHODS", "AugmentConfig", "DataConfig", "EvalConfig", "OptimConfig", "RunConfig", "TrainConfig", "baseline",
    "create_backbone", "embed", "evaluate_run", "get_method", "load", "load_dataset", "train",
]
