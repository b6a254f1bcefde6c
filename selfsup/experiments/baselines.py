"""The references every result is read against: raw pixels and a random-init encoder, measured by the same
protocols on the same splits (``selfsup baseline``; the benchmarks and the demo print margins over them)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn as nn

from selfsup.api import inference_mode
from selfsup.backbones import create_backbone
from selfsup.config import DataConfig, EvalConfig
from selfsup.data.cache import cache_root, decision_cache
from selfsup.data.plan import evaluation_splits, split_description
from selfsup.eval import Evaluation, evaluate_embedding
from selfsup.train import resolve_device, resolve_precision
from selfsup.train.rundir import write_json


class RawPixels(nn.Module):
    """The identity representation: flattened pixels in [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def random_init_encoder(backbone: str, channels: int, image_size: int, seed: int = 0) -> nn.Module:
    """``backbone`` as initialised with ``seed``, untrained: the random-init reference (baseline, explore)."""
    torch.manual_seed(seed)
    return create_backbone(backbone, in_channels=channels, image_size=image_size)


def baseline(dataset: str = "fashion-mnist", backbone: str = "conv6", out: str | Path | None = None,
             data_dir: str | None = None, seed: int = 0, eval_config: EvalConfig | None = None,
             download: bool = True, data: DataConfig | None = None) -> dict[str, Evaluation]:
    """Raw pixels and a random-init ``backbone`` under the same protocols; writes ``<out>/<name>/eval.json``.

    ``data`` (its validation split) defaults to ``dataset``/``data_dir`` with the dataset's own validation split."""
    eval_config = eval_config or EvalConfig()
    data = data or DataConfig(dataset=dataset, data_dir=data_dir, download=download)
    dataset = data.dataset
    device = resolve_device("auto")
    train_precision = resolve_precision("auto", device, decision_cache())
    splits = evaluation_splits(data, eval_config, seed)
    train_split, test_split = splits
    encoders: dict[str, nn.Module] = {
        "raw-pixels": RawPixels(),
        "random-init": random_init_encoder(backbone, train_split.channels, train_split.image_size, seed),
    }
    results = {}
    for name, encoder in encoders.items():
        encoder = encoder.to(device).eval()
        tic = time.perf_counter()
        mode = inference_mode(eval_config, device, encoder, train_split, train_precision)
        result = evaluate_embedding(encoder, train_split, test_split, eval_config, device, seed, bf16=mode.bf16,
                                    channels_last=mode.channels_last)
        result.split = split_description(data, eval_config, splits)
        result.data = splits.data
        result.baseline = {"name": name, "dataset": dataset, "backbone": backbone if name != "raw-pixels" else None,
                              "seconds": round(time.perf_counter() - tic, 2),
                              "eval": dataclasses.asdict(eval_config)}
        results[name] = result
        if out is not None:
            write_json(Path(out) / name / "eval.json", result.to_dict())
    return results


def reference_levels(data: DataConfig, backbone: str, eval_config: EvalConfig, seed: int = 0
                     ) -> dict[str, Evaluation]:
    """The raw-pixel and random-init ``backbone`` evaluations for ``data`` under ``eval_config``, computed once and
    cached (``~/.cache/selfsup/baselines/``, keyed by dataset, encoder, data and evaluation settings)."""
    import hashlib
    import json

    settings = {"data": {k: v for k, v in dataclasses.asdict(data).items() if k not in ("data_dir", "stream", "workers")},
                "backbone": backbone, "eval": dataclasses.asdict(eval_config), "seed": seed}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache_root() / "baselines" / f"{data.dataset}-{backbone}-{key}.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return {name: Evaluation.from_dict(value) for name, value in stored["levels"].items()}
    levels = baseline(data.dataset, backbone, None, data.data_dir, seed, eval_config, data.download, data)
    write_json(path, {"settings": settings, "levels": {name: e.to_dict() for name, e in levels.items()}})
    return levels
