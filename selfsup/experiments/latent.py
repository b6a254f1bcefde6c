"""What a trained reconstruction run can show: latent interpolation, prior samples, anomaly scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from selfsup.data import ImageDataset, load_dataset, to_float
from selfsup.data.catalog import folder_options
from selfsup.errors import ConfigError
from selfsup.eval.plots import plot_image_rows
from selfsup.methods import METHODS, Method
from selfsup.train.rundir import read_run_config, write_json


def _with_decoder(method: Method, run_dir: Path, what: str) -> Method:
    if not method.reconstructs:
        decoders = ", ".join(name for name in METHODS.names() if METHODS.get(name).reconstructs)
        raise ConfigError(f"{run_dir} was trained with {method.name}, which has no decoder; {what} needs a reconstruction "
                          f"method ({decoders})")
    return method


def _split(run_dir: Path, split: str) -> ImageDataset:
    config = read_run_config(run_dir)
    return load_dataset(config.data.dataset, split, config.data.data_dir, config.data.download,
                        folder_options(config.data))


def interpolate(run_dir: str | Path, a: int, b: int, steps: int = 8, split: str = "test",
                out: str | Path | None = None, device: str = "cpu") -> Path:
    """Decode (1 - w) z_a + w z_b for ``steps`` weights w from 0 to 1 into a PNG strip (seed 002)."""
    from selfsup.api import load

    run_dir = Path(run_dir)
    if steps < 2:
        raise ConfigError(f"--steps must be at least 2 (the two endpoints), got {steps}")
    method = _with_decoder(load(run_dir, device), run_dir, "interpolation")
    dataset = _split(run_dir, split)
    for name, index in (("--a", a), ("--b", b)):
        if not 0 <= index < len(dataset):
            raise ConfigError(f"{name} {index} is out of range: the {split} split has {len(dataset)} images "
                              f"(0..{len(dataset) - 1})")
    images = to_float(dataset.images[[a, b]]).to(device)
    with torch.no_grad():
        codes = method.encode(images)
        weights = torch.linspace(0, 1, steps, device=device)[:, None]
        mixed = (1 - weights) * codes[0] + weights * codes[1]
        decoded = method.decode(mixed)
    path = Path(out) if out is not None else run_dir / "plots" / f"interpolate-{split}-{a}-{b}.png"
    rows = [("endpoints", images), (f"w = 0 .. 1 ({steps})", decoded)]
    return plot_image_rows(rows, path, f"{method.name}: {split} images {a} -> {b}")


def sample(run_dir: str | Path, n: int = 16, seed: int = 0, out: str | Path | None = None,
           device: str = "cpu") -> Path:
    """Images decoded from codes drawn from the prior N(0, I): only the VAE has one."""
    from selfsup.api import load

    run_dir = Path(run_dir)
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    method = load(run_dir, device)
    if not hasattr(method, "sample"):
        raise ConfigError(f"{run_dir} was trained with {method.name}, which has no prior to sample from; train a vae")
    images = method.sample(n, torch.Generator(device=device).manual_seed(seed))
    path = Path(out) if out is not None else run_dir / "plots" / "samples.png"
    per_row = 8
    rows = [("" if i else "N(0, I)", images[i : i + per_row]) for i in range(0, n, per_row)]
    return plot_image_rows(rows, path, f"{method.name}: {n} samples from the prior")


def anomaly(run_dir: str | Path, normal_class: int, device: str = "cpu", batch_size: int = 1024,
            any_training: bool = False) -> dict[str, Any]:
    """Reconstruction error as an anomaly score: AUROC on the test split, ``normal_class`` normal, the rest
    anomalies (seed 002). Meaningful only when the run was trained on the normal class alone (data.classes): a
    run trained on other classes is refused unless ``any_training``."""
    from sklearn.metrics import roc_auc_score

    from selfsup.api import image_errors, load

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    trained_on = list(config.data.classes) if config.data.classes is not None else None
    if trained_on != [normal_class] and not any_training:
        raise ConfigError(
            f"{run_dir} was trained on {trained_on or 'all classes'}, not on class {normal_class} alone, so its "
            f"reconstruction error does not single that class out (its AUROC would mean nothing). Train on the normal "
            f"class: selfsup train {config.method} --dataset {config.data.dataset} --set data.classes=[{normal_class}] "
            "--out RUN; or pass --any-training to score this run anyway")
    method = _with_decoder(load(run_dir, device), run_dir, "anomaly scoring")
    test = _split(run_dir, "test")
    labels = test.labels.cpu()
    present = sorted(set(labels.tolist()))
    if normal_class not in present:
        raise ConfigError(f"--normal-class {normal_class} is not a label of the test split (labels {present})")
    errors = image_errors(method, test, torch.device(device), batch_size)
    is_anomaly = (labels != normal_class).numpy()
    result = {
        "normal_class": normal_class,
        "auroc": float(roc_auc_score(is_anomaly, errors.numpy())),
        "mean_error_normal": float(errors[~torch.from_numpy(is_anomaly)].mean()),
        "mean_error_anomalies": float(errors[torch.from_numpy(is_anomaly)].mean()),
        "test_images": len(test),
        "trained_on_classes": trained_on,
        "trained_on_normal_only": trained_on == [normal_class],
    }
    write_json(run_dir / f"anomaly-class{normal_class}.json", result)
    return result


def score_images(run_dir: str | Path, folder: str | Path, out: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 1024) -> Path:
    """Every image below ``folder`` scored by the run's reconstruction error (higher: more anomalous), into a CSV
    (file, label where the folder has class subfolders, error), highest first."""
    import csv

    from selfsup.api import image_errors, load
    from selfsup.experiments.embed import read_images

    run_dir = Path(run_dir)
    method = _with_decoder(load(run_dir, device), run_dir, "anomaly scoring")
    config = read_run_config(run_dir)
    context = method.context
    dataset, files = read_images(Path(folder), context.image_size, context.in_channels, config.data.resize)
    errors = image_errors(method, dataset, torch.device(device), batch_size).tolist()
    path = Path(out) if out is not None else run_dir / f"anomaly-{Path(folder).name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "class", "reconstruction_error"])
        for index in sorted(range(len(files)), key=lambda i: -errors[i]):
            label = int(dataset.labels[index])
            writer.writerow([files[index], label, dataset.classes[label] if label >= 0 else "", f"{errors[index]:.6g}"])
    return path
