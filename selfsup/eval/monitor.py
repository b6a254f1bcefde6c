"""The online monitor: "is it learning?" while it trains.

Every ``monitor.every`` steps, at each epoch end and once before the first step (the random-init level of
this very encoder), the current backbone embeds a fixed bank of labelled training images and a fixed subset
of the validation split, and the kNN vote of the evaluation scores it. Validation images are never trained
on, and no test image is read. The raw-pixel level is measured once on the same images, so the plot shows
the bar to clear.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from selfsup.config import EvalConfig, MonitorConfig
from selfsup.data import ImageDataset
from selfsup.eval import extract_features, projected_knn


class OnlineMonitor:
    def __init__(self, bank: ImageDataset, queries: ImageDataset, config: MonitorConfig, eval_config: EvalConfig,
                 device: torch.device, bf16: bool = False, seed: int = 0, channels_last: bool = False) -> None:
        self.bank = bank.random_subset(config.bank, seed)
        self.queries = queries.random_subset(config.queries, seed)
        self.config = config
        self.eval_config = eval_config
        self.device = device
        self.bf16, self.channels_last = bf16, channels_last  # the training's own precision and memory format
        self.seed = seed
        self.seconds = 0.0  # time spent measuring, kept out of the training time
        self.measurements = 0
        raw_bank = self.bank.images.flatten(1).float().div(255.0)
        raw_queries = self.queries.images.flatten(1).float().div(255.0)
        self.raw_pixel_accuracy = self.knn(raw_bank, raw_queries)

    def knn(self, bank_features: torch.Tensor, query_features: torch.Tensor) -> float:
        result = projected_knn(bank_features, self.bank.labels.cpu(), query_features, self.queries.labels.cpu(),
                               self.eval_config, self.seed)
        return float(result["accuracy"])

    def features(self, embed: Callable[[torch.Tensor], torch.Tensor], dataset: ImageDataset) -> torch.Tensor:
        return extract_features(embed, dataset, self.device, self.eval_config.extract_batch_size, progress=False,
                                bf16=self.bf16, channels_last=self.channels_last)

    def measure(self, method: torch.nn.Module) -> dict[str, Any]:
        """kNN accuracy of ``method.embed`` (in eval mode; its training mode is restored) on the validation subset."""
        tic = time.perf_counter()
        was_training = method.training
        method.eval()
        try:
            accuracy = self.knn(self.features(method.embed, self.bank), self.features(method.embed, self.queries))
        finally:
            method.train(was_training)
        seconds = time.perf_counter() - tic
        self.seconds += seconds
        self.measurements += 1
        return {"monitor_knn": round(accuracy, 5), "monitor_seconds": round(seconds, 3)}

    def levels(self) -> dict[str, Any]:
        """What metrics.jsonl records once: the reference level and the sizes the monitor used."""
        return {"monitor_raw_pixels_knn": round(self.raw_pixel_accuracy, 5), "monitor_bank": len(self.bank),
                "monitor_queries": len(self.queries), "monitor_every": self.config.every}
