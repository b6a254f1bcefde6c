"""The data a run uses, assembled in one place: the training images (the training split less the validation
images, then ``data.classes`` and ``data.limit``) and the evaluation's splits (what the protocols fit on and what
they score), with the record of where they came from that every run logs and eval.json keeps."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch

from selfsup.config import DataConfig, EvalConfig, RunConfig
from selfsup.data.catalog import DATASETS, folder_options, load_dataset
from selfsup.data.dataset import ImageDataset, check_one_batch
from selfsup.data.splits import LabelledSplits, held_out_of_training, labelled_splits, resolve_val_size
from selfsup.errors import ConfigError

RUN_LOG = logging.getLogger("selfsup.run")  # what a run uses (its data): shown by the command line without -v


class DataPlan:
    """The data of one run, each split of each folder read at most once: the trainer's images
    (``training_data``), the online monitor's bank and validation images and the evaluation's splits
    (``evaluation_splits``) all come from the reads kept here. ``api.train`` builds one per run; the functions
    below build their own when given none (one read per call, as before)."""

    def __init__(self, data: DataConfig) -> None:
        self.data = data
        self.reads: dict[tuple[str, str | None], ImageDataset] = {}

    def read(self, split: str, data_dir: str | None = None) -> ImageDataset:
        """``split`` of the run's dataset (from ``data_dir``, default ``data.data_dir``), read on first use."""
        key = (split, data_dir if data_dir is not None else self.data.data_dir)
        if key not in self.reads:
            self.reads[key] = load_dataset(self.data.dataset, split, key[1], self.data.download,
                                           folder_options(self.data))
        return self.reads[key]

    def labelled(self, data_dir: str | None = None, with_test: bool = True) -> LabelledSplits:
        """``labelled_splits`` over this plan's reads."""
        return labelled_splits(self.data.dataset, val_size=self.data.val_size, val_seed=self.data.val_seed,
                               with_test=with_test, read=lambda split: self.read(split, data_dir))


def training_data(config: RunConfig, plan: DataPlan | None = None) -> ImageDataset:
    """The images the run trains on: the dataset's training split less the validation images, then
    ``data.classes`` and ``data.limit``; every image batch must fit (at least one batch); logs where it came from."""
    spec = DATASETS.get(config.data.dataset)
    resolve_val_size(spec.name, config.data.val_size)  # a split that cannot be held out fails before any reading
    dataset = (plan or DataPlan(config.data)).read(spec.train_split)
    read, fingerprint = len(dataset), dataset.fingerprint()
    # the validation images are never trained on: every tuning path scores on them
    dataset = held_out_of_training(spec.name, dataset, config.data.val_size, config.data.val_seed)
    held_out = read - len(dataset)
    if config.data.classes is not None:
        keep = torch.isin(dataset.labels, torch.tensor(config.data.classes))
        if not keep.any():
            raise ConfigError(f"data.classes {list(config.data.classes)}: no {spec.name} training image has these "
                              f"labels (it has {len(dataset.classes)} classes)")
        dataset = dataset.subset(keep.nonzero().squeeze(1))
    if config.data.limit is not None:
        dataset = dataset.random_subset(config.data.limit, config.train.seed)
    check_one_batch(len(dataset), config.train.batch_size)
    RUN_LOG.info("data: %s from %s: %d training images read (content fingerprint %s), %d held out for validation "
                 "(data.val_size), %d trained on", spec.name, dataset.source, read, fingerprint, held_out, len(dataset))
    return dataset


@dataclass
class EvaluationSplits:
    """The labelled images the protocols fit on, the images they score, and the data source record (eval.json's
    ``data``: where the images came from, how many per split, a content fingerprint). Unpacks as (fit, scored)."""

    fit: ImageDataset
    scored: ImageDataset
    data: dict[str, Any]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.fit, self.scored))


def evaluation_splits(data: DataConfig, eval_config: EvalConfig, seed: int, plan: DataPlan | None = None
                      ) -> EvaluationSplits:
    """(labelled images to fit on, images to score): the training split less the validation images, and the
    test split (``eval.split=test``) or the validation images (``eval.split=val``); either optionally limited to a
    fixed random subset (``eval.train_limit``, ``eval.test_limit``)."""
    # unlabeled training images are evaluated on a labelled folder (data.eval_data_dir)
    splits = (plan or DataPlan(data)).labelled(data.eval_data_dir, with_test=eval_config.split == "test")
    if data.eval_data_dir is not None:
        data = dataclasses.replace(data, data_dir=data.eval_data_dir)
    if bool((splits.fit.labels < 0).all()):
        raise ConfigError(f"{data.data_dir or data.dataset} has no labels to fit a probe on; evaluate on a labelled "
                          "folder: --set data.eval_data_dir=FOLDER (one subfolder per class)")
    if len(splits.fit.labels[splits.fit.labels >= 0].unique()) < 2:
        raise ConfigError(f"{data.data_dir or data.dataset} holds one class, and the probe, kNN and k-means score how "
                          "well classes are told apart (with one, every score is 1); evaluate on a folder with two "
                          "or more class subfolders: --set data.eval_data_dir=FOLDER")
    fit = splits.fit
    if eval_config.split == "val":
        if splits.val is None:
            raise ConfigError(f"eval.split=val needs a validation split, and there is none for {data.dataset} "
                              f"({data.data_dir or 'the default folder'}: data.val_size resolved to 0); set "
                              "data.val_size=N")
        scored = splits.val
    else:
        assert splits.test is not None  # read: with_test is eval.split == "test"
        scored = splits.test
    if eval_config.train_limit is not None:
        fit = fit.random_subset(eval_config.train_limit, seed)
    if eval_config.test_limit is not None:
        scored = scored.random_subset(eval_config.test_limit, seed)
    return EvaluationSplits(fit, scored, splits.record())


def split_description(data: DataConfig, eval_config: EvalConfig, splits: EvaluationSplits) -> dict[str, Any]:
    """What eval.json says about where its numbers come from."""
    val_size = splits.data["val_images"]
    fitted_on = f"train less the {val_size} validation images" if val_size else "train"
    return {"scored_on": eval_config.split, "scored_images": len(splits.scored), "fitted_on": fitted_on,
            "fitted_images": len(splits.fit), "val_size": val_size, "val_seed": data.val_seed}
