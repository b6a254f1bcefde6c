"""Typed, frozen run configuration: one dataclass per component, YAML in and out.

Every field is validated when the dataclass is built, so a bad value is rejected before any
work starts. Method-specific fields live in the method's own ``Config`` dataclass (see
``selfsup.methods``) and are stored under ``params``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfsup.coercion import build_dataclass, check_numbers, read_yaml, require
from selfsup.errors import ConfigError
from selfsup.registry import BACKBONES, METHODS, OPTIMIZERS  # filled by the layers that define them


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fashion-mnist"  # a registered dataset name (see `selfsup datasets`)
    data_dir: str | None = None  # where the files are; else $SELFSUP_DATA, /usr/share/datasets, the cache
    limit: int | None = None  # train on a fixed random subset of this many images (quick checks)
    classes: tuple[int, ...] | None = None  # train only on these labels (e.g. the normal class for anomaly scores)
    download: bool = True  # fetch missing files from the official source (verified by checksum)
    stream: bool = False  # image-folder: decode batches from disk each step instead of loading the folder
    workers: int = 0  # stream: DataLoader processes decoding batches (0: decode in the training process)
    val_size: int | None = None  # images held out of the training split for validation; None: the dataset's default
    val_seed: int = 0  # draws the validation split; fixed apart from train.seed so every run shares one split
    # image folders (--dataset image-folder; data/folders.py): the side in pixels (None: 32), the channels (1 or 3;
    # None: 1 when every image is grayscale), how images are resized (crop: shorter side then centre crop; stretch),
    # and for a folder without train/ and test/ the class-balanced share held out as the test split (by val_seed)
    image_size: int | None = None
    channels: int | None = None
    eval_data_dir: str | None = None  # a labelled folder of the same dataset kind to evaluate on (unlabeled training)
    resize: str = "crop"
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        require(self.workers >= 0, f"data.workers must be >= 0, got {self.workers}")
        require(self.image_size is None or 8 <= self.image_size <= 1024,
               f"data.image_size must be in [8, 1024], got {self.image_size}")
        require(self.channels in (None, 1, 3), f"data.channels must be 1, 3 or null (auto), got {self.channels}")
        require(self.resize in ("crop", "stretch"), f"data.resize must be crop or stretch, got {self.resize!r}")
        require(0.0 < self.test_fraction < 1.0, f"data.test_fraction must be in (0, 1), got {self.test_fraction}")
        require(self.val_size is None or self.val_size >= 0, f"data.val_size must be >= 0, got {self.val_size}")
        require(not self.stream or (self.limit is None and self.classes is None),
               "data.stream reads the whole folder: data.limit and data.classes need the in-memory path")
        require(self.limit is None or self.limit >= 2, f"data.limit must be at least 2, got {self.limit}")
        require(self.classes is None or (len(self.classes) > 0 and all(c >= 0 for c in self.classes)),
               f"data.classes must be a non-empty list of labels >= 0, got {self.classes}")


@dataclass(frozen=True)
class AugmentConfig:
    """Batched view augmentation; magnitudes are those at strength 1 (the recipe)."""

    strength: float = 1.0  # scales every magnitude: 0 is the identity, 1 the recipe below
    crop_scale: tuple[float, float] = (0.2, 1.0)  # random resized crop, area fraction range
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio range (log-uniform)
    flip_p: float = 0.5  # horizontal flip probability
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8  # probability that colour jitter is applied
    grayscale_p: float = 0.2  # probability of converting to grayscale (no-op on 1 channel)
    blur_p: float = 0.0  # Gaussian blur probability (SimCLR uses 0.5 on large images, none at 32 px)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0  # solarize probability
    solarize_threshold: float = 0.5
    rotation_degrees: float = 0.0  # random rotation in [-d, d]
    # multi-crop (SwAV, DINO): this many small crops beside the two global views, at the same image size (Conv6's
    # flattened features need one input size); methods that support it (multi_crop) pair each with both globals
    local_crops: int = 0
    local_crop_scale: tuple[float, float] = (0.05, 0.4)  # their area fraction range (before strength)
    # asymmetric views (BYOL, Grill et al. 2020, table 6): the second global view's blur and solarize probabilities;
    # None: as the first view's (symmetric). solo-learn's CIFAR BYOL solarizes the second view only, at 0.2
    second_blur_p: float | None = None
    second_solarize_p: float | None = None

    def __post_init__(self) -> None:
        require(0.0 <= self.strength <= 1.0, f"augment.strength must be in [0, 1], got {self.strength}")
        lo, hi = self.crop_scale
        require(0.0 < lo <= hi <= 1.0, f"augment.crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        require(0.0 < self.crop_ratio[0] <= self.crop_ratio[1], f"bad augment.crop_ratio {self.crop_ratio}")
        require(0 <= self.local_crops <= 16, f"augment.local_crops must be 0 to 16, got {self.local_crops}")
        lo, hi = self.local_crop_scale
        require(0.0 < lo <= hi <= 1.0, "augment.local_crop_scale must satisfy 0 < min <= max <= 1, got "
                f"{self.local_crop_scale}")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p", "second_blur_p", "second_solarize_p"):
            value = getattr(self, name)
            if value is not None or not name.startswith("second_"):
                require(0.0 <= value <= 1.0, f"augment.{name} must be a probability in [0, 1], got {value}")
        require(all(j >= 0 for j in self.jitter), f"augment.jitter magnitudes must be >= 0, got {self.jitter}")
        require(self.jitter[3] <= 0.5, f"augment.jitter hue must be <= 0.5, got {self.jitter[3]}")
        require(0 < self.blur_sigma[0] <= self.blur_sigma[1], f"bad augment.blur_sigma {self.blur_sigma}")
        require(0.0 <= self.rotation_degrees <= 180.0, "augment.rotation_degrees must be in [0, 180]")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # adam, adamw, sgd or lars
    lr: float = 1e-3  # peak learning rate, reached after warm-up
    weight_decay: float = 1e-6  # never applied to biases and norm parameters
    momentum: float = 0.9  # sgd / lars momentum
    schedule: str = "cosine"  # cosine or constant (after warm-up)
    warmup_epochs: float = 0.0  # linear warm-up from 0; fractions of an epoch are fine
    # a warm-up lasts at least this many steps (at most a tenth of the run), so a recipe tuned on a large dataset
    # keeps a real warm-up on a small one (0.2 epoch of 12 steps is 2 steps); applies when warmup_epochs > 0
    warmup_min_steps: int = 50
    min_lr_ratio: float = 0.0  # cosine ends at lr * min_lr_ratio
    grad_clip: float | None = None  # clip the global gradient norm to this value

    def __post_init__(self) -> None:
        OPTIMIZERS.get(self.optimizer)
        require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, f"optim.momentum must be in [0, 1), got {self.momentum}")
        require(self.schedule in ("cosine", "constant"), f"optim.schedule must be cosine or constant, got {self.schedule!r}")
        require(self.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        require(self.warmup_min_steps >= 0, f"optim.warmup_min_steps must be >= 0, got {self.warmup_min_steps}")
        require(0 <= self.min_lr_ratio <= 1, f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        require(self.grad_clip is None or self.grad_clip > 0, f"optim.grad_clip must be > 0, got {self.grad_clip}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256  # images per step (each method makes its own views from them)
    seed: int = 0
    precision: str = "auto"  # auto measures fp32 against bf16 on this device once and keeps the faster
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    checkpoint_every: int = 200  # steps between checkpoints (one is always written at the end)
    log_every: int = 20  # steps between lines in metrics.jsonl
    threads: int | None = None  # torch intra-op threads; default: all cores
    channels_last: str = "auto"  # on, off, or auto: measured once per device (a probe conv step), kept if faster
    # torch.compile of the encoder: on, off, or auto: compiled only where the gain measured on this run's own step
    # (once per device, method, encoder and shape; cached) over the run's expected length repays the compile time
    compile: str = "auto"
    logger: str = "jsonl"  # metrics.jsonl always; tensorboard: event files in RUN/tensorboard/ as well
    # stop (exit 1) once the collapse monitor has flagged this many steps in a row (embedding std < 0.1: every image
    # maps to nearly the same point); the checkpoint from before the collapse is kept. 0: train on regardless
    collapse_patience: int = 50
    # keep the weights of the online monitor's best measurement (its validation kNN) in checkpoints/best.pt: the
    # run's evaluation, `selfsup eval RUN` and selfsup.load use them instead of the last step's (early stopping on
    # the validation split; needs the monitor). last.pt stays the point a resumed run continues from
    keep_best: bool = False
    # with keep_best: stop at the end of the epoch in which this many monitor measurements in a row have not beaten
    # the best one (0: train the whole schedule)
    patience: int = 0

    def __post_init__(self) -> None:
        require(1 <= self.epochs <= 10_000, f"train.epochs must be in [1, 10000], got {self.epochs}")
        require(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        require(self.precision in ("auto", "fp32", "bf16"), f"train.precision must be auto, fp32 or bf16, got {self.precision!r}")
        require(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               f"train.device must be auto, cpu or cuda[:N], got {self.device!r}")
        require(self.checkpoint_every >= 1, "train.checkpoint_every must be >= 1")
        require(self.log_every >= 1, "train.log_every must be >= 1")
        require(self.threads is None or 1 <= self.threads <= 256, f"train.threads must be in [1, 256], got {self.threads}")
        require(self.channels_last in ("auto", "on", "off"),
               f"train.channels_last must be auto, on or off, got {self.channels_last!r}")
        require(self.compile in ("auto", "on", "off"), f"train.compile must be auto, on or off, got {self.compile!r}")
        require(self.collapse_patience >= 0, f"train.collapse_patience must be >= 0 (0: off), got {self.collapse_patience}")
        require(self.patience >= 0, f"train.patience must be >= 0 (0: off), got {self.patience}")
        require(not self.patience or self.keep_best,
                "train.patience stops on the online monitor's best measurement: set train.keep_best=true with it")
        require(self.logger in ("jsonl", "tensorboard"), f"train.logger must be jsonl or tensorboard, got {self.logger!r}")


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"  # where accuracy is scored: test (the final figure) or val (tuning; data.val_size images)
    knn_k: int = 20  # neighbours in the weighted kNN vote
    knn_temperature: float = 0.07  # weight exp(cos / T) per neighbour (Wu et al. 2018)
    probe_epochs: int = 30  # linear probe epochs on cached features (memory-bound: ~0.5 s each at 60k x 4608)
    probe_lr: float = 1e-3
    probe_batch_size: int = 1024
    kmeans_restarts: int = 3
    max_feature_dim: int = 256  # kNN and k-means use the top-256 singular subspace of wider features; 0: exact
    extract_batch_size: int = 1024  # feature extraction batch
    # feature extraction: auto (the fastest of fp32/bf16 x NCHW/channels-last for this encoder's forward pass on this
    # device, measured once and cached; never slower than fp32), train (the run's training precision) or fp32
    precision: str = "auto"
    train_limit: int | None = None  # evaluate on a fixed random subset of the training split (quick checks)
    test_limit: int | None = None  # likewise for the test split

    def __post_init__(self) -> None:
        require(self.split in ("test", "val"), f"eval.split must be test or val, got {self.split!r}")
        require(self.precision in ("auto", "train", "fp32"),
               f"eval.precision must be auto, train or fp32, got {self.precision!r}")
        require(self.train_limit is None or self.train_limit >= 10, "eval.train_limit must be >= 10")
        require(self.test_limit is None or self.test_limit >= 10, "eval.test_limit must be >= 10")
        require(self.knn_k >= 1, f"eval.knn_k must be >= 1, got {self.knn_k}")
        require(self.knn_temperature > 0, f"eval.knn_temperature must be > 0, got {self.knn_temperature}")
        require(self.probe_epochs >= 1, "eval.probe_epochs must be >= 1")
        require(self.probe_lr > 0, "eval.probe_lr must be > 0")
        require(self.probe_batch_size >= 1 and self.extract_batch_size >= 1, "eval batch sizes must be >= 1")
        require(self.kmeans_restarts >= 1, "eval.kmeans_restarts must be >= 1")
        require(self.max_feature_dim >= 0, "eval.max_feature_dim must be >= 0 (0 keeps every dimension)")


@dataclass(frozen=True)
class MonitorConfig:
    """The online monitor: kNN accuracy of the current encoder on validation images while training."""

    enabled: bool = True  # needs a validation split (data.val_size > 0) and labels
    every: int = 0  # steps between measurements; 0: at each epoch end only (always also before the first step)
    bank: int = 5000  # labelled training images (never validation ones) the kNN votes with; a fixed subset
    queries: int = 2000  # validation images scored; a fixed subset

    def __post_init__(self) -> None:
        require(self.every >= 0, f"monitor.every must be >= 0 (0: at epoch ends), got {self.every}")
        require(self.bank >= 10, f"monitor.bank must be >= 10, got {self.bank}")
        require(self.queries >= 10, f"monitor.queries must be >= 10, got {self.queries}")


RECIPES = ("tuned", "seed")  # RunConfig.for_method's presets

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "augment": AugmentConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "monitor": MonitorConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``params`` is the method's own typed config."""

    method: str = "simclr"
    backbone: str = "conv6"
    # which defaults the run started from: "seed" (the dataclass defaults: the seeds' settings) or "tuned" (the
    # method's recipe from the study on the validation split, `RunConfig.for_method`); a record, not a switch
    recipe: str = "seed"
    params: Any = None  # the method's Config instance; filled from the registry when None
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self) -> None:
        method_cls = METHODS.get(self.method)
        require(self.recipe in RECIPES, f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")

        BACKBONES.get(self.backbone)
        if self.params is None:
            object.__setattr__(self, "params", method_cls.Config())
        elif isinstance(self.params, dict):
            object.__setattr__(self, "params", build_dataclass(method_cls.Config, self.params, "params"))
        elif not isinstance(self.params, method_cls.Config):
            raise ConfigError(f"params must be a {method_cls.Config.__name__}, got {type(self.params).__name__}")
        for name in SECTIONS:
            check_numbers(getattr(self, name), name)
        check_numbers(self.params, "params")
        method_cls.validate_run(self)

    @classmethod
    def for_method(cls, method: str, recipe: str = "tuned", overrides: dict[str, Any] | None = None) -> RunConfig:
        """The defaults of ``method`` under ``recipe``, then ``overrides`` (``--set`` keys).

        ``tuned``: the method's ``recipe`` (optimizer, batch, temperature, ... chosen on the validation split; see
        README "Defaults and why") over the dataclass defaults. ``seed``: the dataclass defaults alone, which are
        the seeds' settings (seed 000's Conv6 SimCLR: Adam 1e-3, batch 256, temperature 0.5).
        """
        require(recipe in RECIPES, f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
        preset = dict(METHODS.get(method).recipe) if recipe == "tuned" else {}
        return cls().replace({"method": method, "recipe": recipe, **preset, **(overrides or {})})

    @classmethod
    def resolve(cls, method: str, recipe: str | None = None, file: str | Path | None = None,
                options: dict[str, Any] | None = None, sets: dict[str, Any] | None = None) -> RunConfig:
        """A run's config as the command line builds it, for the CLI and Python alike; later wins: the method's
        defaults under ``recipe`` (tuned unless told) or a config ``file`` (complete: it replaces them), then
        ``options`` (the command line's option names, e.g. ``epochs``, ``data_dir``, or any config key; None values
        are not given), then ``sets`` (``--set`` keys; strings are parsed as the command line does)."""
        overrides: dict[str, Any] = {"method": method, **option_overrides(options), **(sets or {})}
        if file is None:  # in one step: a method's required inputs (nn-byol's neighbours) come with the overrides
            return cls.for_method(method, recipe or "tuned", overrides)
        base = cls.from_yaml(file)
        if recipe is not None and recipe != base.recipe:
            raise ConfigError(f"--recipe {recipe} and --config {file} (recipe {base.recipe}) disagree; a config "
                              "file holds every value, so give one or the other")
        return base.replace(overrides)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        raw = dict(raw)
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}; valid: {[f.name for f in dataclasses.fields(cls)]}")
        kwargs: dict[str, Any] = {}
        for name, section_cls in SECTIONS.items():
            if name in raw:
                kwargs[name] = build_dataclass(section_cls, raw.pop(name) or {}, name)
        return cls(**raw, **kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a config file must hold a mapping, got {type(raw).__name__}")
        try:
            return cls.from_dict(raw)
        except ConfigError as error:
            raise type(error)(f"{path}: {error}") from None

    def anchored(self) -> RunConfig:
        """A copy whose file paths (data.data_dir, data.eval_data_dir, params.neighbors) are absolute: a run's
        config.yaml then finds its data and neighbours from any working folder, not only the one it trained in."""
        paths = {"data.data_dir": self.data.data_dir, "data.eval_data_dir": self.data.eval_data_dir,
                 "params.neighbors": getattr(self.params, "neighbors", None)}
        absolute = {key: str(Path(value).expanduser().absolute()) for key, value in paths.items() if value}
        changed = {key: value for key, value in absolute.items() if value != paths[key]}
        return self.replace(changed) if changed else self

    def replace(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with ``overrides`` applied; keys are ``section.field`` or a field name unique to one section."""
        raw = self.to_dict()
        if "method" in overrides and overrides["method"] != self.method:
            raw["params"] = {}  # another method's params do not carry over
        params_cls = _params_class(overrides.get("method", self.method))
        for key, value in overrides.items():
            section, name = resolve_key(key, params_cls)
            if section is None:
                raw[name] = value
            else:
                raw.setdefault(section, {})[name] = value
        return RunConfig.from_dict(raw)


def _params_class(method: str) -> type:
    return METHODS.get(method).Config


def valid_keys(params_cls: type | None = None) -> list[str]:
    keys = ["method", "backbone", "recipe"]
    sections = dict(SECTIONS)
    if params_cls is not None:
        sections["params"] = params_cls
    for section, section_cls in sections.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(section_cls)]
    return keys


# the command line's run options -> their config keys (full keys: short ones can become ambiguous)
OPTION_KEYS = {"dataset": "data.dataset", "data_dir": "data.data_dir", "backbone": "backbone", "epochs": "train.epochs",
               "batch_size": "train.batch_size", "lr": "optim.lr", "seed": "train.seed", "limit": "data.limit",
               "precision": "train.precision", "device": "train.device", "image_size": "data.image_size",
               "channels": "data.channels", "logger": "train.logger"}


def option_overrides(options: dict[str, Any] | None) -> dict[str, Any]:
    """The given command-line options (None: not given) as config keys."""
    return {OPTION_KEYS.get(name, name): value for name, value in (options or {}).items() if value is not None}


def resolve_key(key: str, params_cls: type | None = None) -> tuple[str | None, str]:
    """Map ``--set`` keys (``optim.lr`` or a unique bare name such as ``lr``) to (section, field)."""
    keys = valid_keys(params_cls)
    if key in ("method", "backbone", "recipe"):
        return None, key
    if "." in key:
        if key not in keys:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(keys)}")
        section, name = key.split(".", 1)
        return section, name
    matches = [k for k in keys if k.split(".")[-1] == key and "." in k]
    if not matches:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(keys)}")
    if len(matches) > 1:
        raise ConfigError(f"config key {key!r} is ambiguous; use one of {', '.join(matches)}")
    section, name = matches[0].split(".", 1)
    return section, name


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
