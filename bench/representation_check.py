"""Which features of a trained autoencoder run evaluate best: its code (the VAE's posterior mean) or the backbone
features. Scores one checkpoint both ways on the run's validation split (a diagnostic: the test split is not read),
and for a VAE counts the active units of the mean (Burda et al. 2016: a unit is active when the variance over the
data of its posterior mean exceeds 0.01) and its average KL.

    python bench/robust_folder.py vae ae dae     # the runs it was made for, under /tmp/selfsup-robust-runs
    python bench/representation_check.py RUN_DIR [...] --out bench/results/robust-folder/representation.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from selfsup import api
from selfsup.data.plan import evaluation_splits
from selfsup.losses import gaussian_kl
from selfsup.train.rundir import read_run_config

ACTIVE = 0.01


def check(run: Path) -> dict:
    config = read_run_config(run).replace({"eval.split": "val", "eval.precision": "fp32"})
    method = api.load(run)
    device = torch.device("cpu")
    record: dict = {"run": run.name, "method": config.method, "default_representation": method.params.representation,
                    "latent_dim": method.params.latent_dim}
    if hasattr(method, "posterior"):
        fit, _ = evaluation_splits(config.data, config.eval, config.train.seed)
        with torch.no_grad():
            images = torch.cat(list(fit.float_batches(512)))
            mu, logvar = method.posterior(method.as_input(images))
        active = mu.var(0) > ACTIVE
        record.update(active_units=int(active.sum()), kl_per_image=float(gaussian_kl(mu, logvar)),
                      posterior_variance_of_active_units=float(logvar.exp().mean(0)[active].mean()))
    for representation in ("latent", "backbone"):
        method.params = dataclasses.replace(method.params, representation=representation)
        result = api.evaluate_method(method, config, device, progress=False, precision="fp32")
        record[representation] = {"probe_acc": result.linear_probe["accuracy"], "knn_acc": result.knn["accuracy"],
                                  "kmeans_nmi": result.kmeans["nmi"], "dim": result.features["dim"]}
    record["split"] = result.split
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    out["command"] = "python bench/representation_check.py " + " ".join(str(run) for run in args.runs)
    for run in args.runs:
        out[run.name] = check(run)
        print(json.dumps(out[run.name]), flush=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
