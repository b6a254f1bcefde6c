"""The ``selfsup`` command line: a thin layer over the Python API (``selfsup.api``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from selfsup.config import OPTION_KEYS, RunConfig, valid_keys
from selfsup.errors import EXIT_USER, ConfigError, UserError
from selfsup.eval.result import Evaluation
from selfsup.experiments.finetune import FinetuneConfig

FINETUNE = FinetuneConfig()  # the fine-tuning defaults, written once (FinetuneConfig); the options show them


class Fail(click.ClickException):
    """An error shown as one line, no traceback, with its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"error: {self.format_message()}", err=True)


class GuardedGroup(click.Group):
    """Turns the package's expected errors into one-line messages and exit codes, for every command.

    A person's mistake (``UserError``: a bad name, value, file or run directory) exits with 2, a diverged run with 1,
    an interrupted one with 130; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from selfsup.train import DivergenceError, TrainingInterrupted

        try:
            return super().invoke(ctx)
        except UserError as error:
            raise Fail(str(error), EXIT_USER) from None
        except DivergenceError as error:
            raise Fail(str(error), 1) from None
        except TrainingInterrupted as error:
            raise Fail(str(error), 130) from None
        except KeyboardInterrupt:  # before training started or after it ended (click would exit 1, "Aborted!")
            raise Fail("interrupted", 130) from None
        except MemoryError:
            raise Fail("out of memory; lower --batch-size or the model's sizes, or train on fewer images", 1) from None
        except OSError as error:  # a file or folder the system refused (permissions, a directory for a file, ...)
            if error.filename is None:
                raise
            raise Fail(f"{error.filename}: {error.strerror or error}", EXIT_USER) from None


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log more (device and precision choices, resume points).")
def cli(verbose: bool) -> None:
    """selfsup: self-supervised representation learning on images, then measure it.

    \b
    selfsup methods
    selfsup train simclr --dataset fashion-mnist --backbone conv6 --epochs 10 --out runs/simclr
    selfsup eval runs/simclr
    selfsup baseline --dataset fashion-mnist --backbone conv6 --out runs/base
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("selfsup.run").setLevel(logging.INFO)  # what a run uses (its data source) is always said


@cli.command()
def methods() -> None:
    """List the registered methods: name, family and what it does."""
    from selfsup.methods import METHODS

    for name in METHODS.names():
        method = METHODS.get(name)
        click.echo(f"{name:<14} {method.family:<16} {method.summary}")


@cli.command()
def datasets() -> None:
    """List the datasets selfsup reads, with their shape and where they come from."""
    from selfsup.data import DATASETS

    for name in DATASETS.names():
        spec = DATASETS.get(name)
        source = f"apt-get install {spec.debian_package}" if spec.debian_package else (
            "download" if spec.downloads else ("built in" if not spec.needs_files else "--data-dir"))
        click.echo(f"{name:<14} {spec.channels}x{spec.image_size}x{spec.image_size:<4} "
                   f"classes {spec.num_classes or 'by folder':<9} {source}")


@cli.command()
def backbones() -> None:
    """List the backbones and their feature size at 28 and 32 px."""
    from selfsup.backbones import BACKBONES, create_backbone

    for name in BACKBONES.names():
        dims = [create_backbone(name, in_channels=1, image_size=size).out_dim for size in (28, 32)]
        click.echo(f"{name:<14} features: {dims[0]} at 28 px, {dims[1]} at 32 px")


def parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        if "=" not in pair:
            raise Fail(f"--set expects key=value, got {pair!r}", EXIT_USER)
        key, value = pair.split("=", 1)
        overrides[key.strip()] = value
    return overrides


RUN_OPTIONS = [
    click.option("--dataset", help="Dataset name (see `selfsup datasets`). Default: fashion-mnist."),
    click.option("--data-dir", help="Folder with the dataset's files. Else $SELFSUP_DATA, /usr/share/datasets, "
                 "the cache."),
    click.option("--image-size", type=int, help="Image folders: the side in pixels images are resized to (default "
                 "32); built-in datasets keep their own."),
    click.option("--channels", type=click.IntRange(1, 3), help="Image folders: 1 or 3 (default: 1 when every image "
                 "is grayscale, else 3)."),
    click.option("--backbone", help="Encoder (see `selfsup backbones`). conv6 is seed 000's; resnet18 for 32 px "
                 "colour."),
    click.option("--epochs", type=int, help="Training epochs. Self-supervised methods keep improving for hundreds; "
                 "10 shows the trend on Fashion-MNIST."),
    click.option("--batch-size", type=int, help="Images per step. Contrastive methods like larger batches "
                 "(more negatives): 256-1024; lower --lr with small batches."),
    click.option("--lr", type=float, help="Peak learning rate after warm-up. Default: the method's recipe (SimCLR: "
                 "SGD 0.06; `--recipe seed`: the seeds' Adam 1e-3). Lower it if the loss spikes or turns NaN."),
    click.option("--seed", type=int, help="Seeds data order, augmentations and initialisation; runs are "
                 "reproducible."),
    click.option("--limit", type=int, help="Train on a fixed random subset of N images, for quick checks."),
    click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
                 help="auto measures bf16 against fp32 on this machine once and keeps the faster (bf16 can be 10x "
                 "slower on CPUs without native bf16)."),
    click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    click.option("--logger", type=click.Choice(["jsonl", "tensorboard"]),
                 help="metrics.jsonl always; tensorboard also writes event files to RUN/tensorboard (needs tensorboard)."),
    click.option("--recipe", type=click.Choice(["tuned", "seed"]),
                 help="Defaults to start from: tuned (the method's recipe chosen on the validation split; default) "
                 "or seed (the seeds' own settings, e.g. seed 000's SimCLR: Adam 1e-3, batch 256, temperature 0.5)."),
    click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                 help="A YAML config (a run's config.yaml works); options given here override it."),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="Any config field: optim.warmup_epochs=1, temperature=0.2, augment.strength=0.5. Repeatable."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
]


def run_options(command):  # type: ignore[no-untyped-def]
    """The options that define a run's config, shared by `train` and `sweep`."""
    for option in reversed(RUN_OPTIONS):
        command = option(command)
    return command


def config_from_options(method: str, options: dict[str, Any]) -> RunConfig:
    """The run's config from the command's options (``api.resolve_config``: recipe < file < options < --set)."""
    from selfsup.api import resolve_config

    given = {name: options.get(name) for name in OPTION_KEYS}
    return resolve_config(method, options.get("recipe"), options.get("config_file"), given, parse_sets(options["sets"]))


@cli.command()
@click.argument("method")
@run_options
@click.option("--out", type=click.Path(file_okay=False), help="Run directory. Default: runs/<method>.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--no-eval", is_flag=True, help="Skip the evaluation after training (run `selfsup eval` later).")
def train(method: str, out, resume, no_eval, **options) -> None:  # type: ignore[no-untyped-def]
    """Train METHOD self-supervised, then evaluate it (linear probe, kNN, k-means on the test split).

    nn-byol trains on neighbours mined in another run: `selfsup neighbors RUN`, then `--set neighbors=RUN` (the
    run or the neighbour file)."""
    from selfsup import api

    config = config_from_options(method, options)
    out_dir = Path(out or f"runs/{config.method}")
    result = api.train(config, out_dir, resume=resume, evaluate=not no_eval,
                          progress=not options["quiet"])
    from selfsup.ops import distributed

    if distributed.rank() != 0:  # under torchrun, rank 0 reports
        return
    click.echo(f"run directory: {out_dir}")
    click.echo(f"trained {result.train.steps} steps in {result.train.seconds:.1f} s "
               f"({result.train.images_per_second:.0f} images/s), final loss {result.train.final_loss:.4f}")
    if result.eval is not None:
        _print_eval(result.eval)


def _print_eval(evaluation: Evaluation) -> None:
    if evaluation.split:
        click.echo(f"[{evaluation.scored_on}: {evaluation.split['scored_images']} images] ", nl=False)
    click.echo(f"linear probe accuracy {evaluation.probe_accuracy:.4f} | "
               f"kNN (k={evaluation.knn['k']}) accuracy {evaluation.knn_accuracy:.4f} | "
               f"k-means NMI {evaluation.nmi:.4f} ARI {evaluation.ari:.4f} accuracy {evaluation.kmeans_accuracy:.4f}")
    if evaluation.reconstruction_mse is not None:
        click.echo(f"{evaluation.scored_on} reconstruction error (MSE per pixel) {evaluation.reconstruction_mse:.5f}")


@cli.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["test", "val"]), default=None,
              help="Score on the test split (final figures) or the validation split (tuning). Default: the run's "
                   "eval.split. Another split than the run's is written to eval-<split>.json.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Evaluation fields, e.g. eval.knn_k=200.")
def eval_command(run_dir: str, split: str | None, sets: tuple[str, ...]) -> None:
    """Evaluate a trained run (on its eval.split, test by default); writes RUN_DIR/eval.json."""
    from selfsup import api

    overrides = parse_sets(sets)
    if split is not None:
        overrides["eval.split"] = split
    evaluation, path = api.evaluate_run(run_dir, overrides)
    _print_eval(evaluation)
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--dataset", default="fashion-mnist", show_default=True)
@click.option("--data-dir", help="Folder with the dataset's files.")
@click.option("--backbone", default="conv6", show_default=True, help="The random-init encoder to measure.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="runs/baseline", show_default=True, type=click.Path(file_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Evaluation fields, e.g. eval.probe_epochs=50 or eval.split=val; data.val_size / data.val_seed.")
def baseline(dataset: str, data_dir: str | None, backbone: str, seed: int, out: str, sets: tuple[str, ...]) -> None:
    """Raw pixels and a random-init encoder under the same protocols: the reference for every result."""
    from selfsup.config import resolve_key
    from selfsup.data import DATASETS
    from selfsup.experiments.baselines import baseline as baseline_of

    def run() -> dict[str, Any]:
        DATASETS.get(dataset)
        pairs = parse_sets(sets)
        other = [key for key in pairs if resolve_key(key)[0] not in ("data", "eval")]
        if other:
            raise ConfigError(f"baseline --set takes data.* and eval.* fields (nothing is trained); got {other}")
        # resolved as every run's keys are (short names included)
        config = RunConfig().replace({"backbone": backbone, "data.dataset": dataset, "data.data_dir": data_dir, **pairs})
        return baseline_of(dataset, backbone, out, data_dir, seed, config.eval, data=config.data)

    results = run()
    for name, evaluation in results.items():
        click.echo(f"{name:<12} ", nl=False)
        _print_eval(evaluation)
    click.echo(f"wrote {out}/raw-pixels/eval.json and {out}/random-init/eval.json")


BENCH_OUT = "bench/results"  # where `bench` writes by default; only there does it also replace BENCHMARKS.md's tables


@cli.command()
@click.argument("what", type=click.Choice(["speed", "eval", "sweep", "stream", "accuracy", "all"]), default="all")
@click.option("--budget", type=click.Choice(["quick", "standard", "long"]), default="standard", show_default=True,
              help="quick: a minute-scale smoke run; standard: the documented budget in BENCHMARKS.md.")
@click.option("--out", default=BENCH_OUT, show_default=True, type=click.Path(file_okay=False))
@click.option("--methods", default="all", show_default=True,
              help="Comma-separated methods for the accuracy benchmark, or 'all' (hours on 2 CPU cores).")
@click.option("--existing-only", is_flag=True, help="Accuracy: tabulate the finished runs, train nothing.")
@click.option("--markdown", default=None, type=click.Path(dir_okay=False),
              help="Accuracy: the file whose generated table is replaced (the text around it is kept); '' for none. "
                   "Default: BENCHMARKS.md with the default --out, none with another --out.")
def bench(what: str, budget: str, out: str, methods: str, existing_only: bool, markdown: str | None) -> None:
    """Measure throughput, data share, evaluation time and accuracy; writes JSON + Markdown to --out."""
    from selfsup import benchmark
    from selfsup.methods import METHODS

    names = METHODS.names() if methods == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    for name in names:
        METHODS.get(name)
    command = f"selfsup bench {what} --budget {budget} --methods {methods}"
    report = benchmark.run(what, budget, Path(out), names, existing_only, bench_markdown(out, markdown), command)
    click.echo(report)


def bench_markdown(out: str, markdown: str | None) -> Path | None:
    """The file whose generated accuracy table `bench` replaces: --markdown when given ('' for none), else
    BENCHMARKS.md for the default --out only, so a benchmark written elsewhere leaves the project's tables alone."""
    if markdown is None:
        return Path("BENCHMARKS.md") if Path(out) == Path(BENCH_OUT) else None
    return Path(markdown) if markdown else None


@cli.command()
@click.argument("methods")
@click.option("--grid", "grids", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="Values of one config key (alpha, strength, seed, optim.lr, ...); several --grid form a product.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Sweep folder: one run directory per cell.")
@run_options
def sweep(methods: str, grids: tuple[str, ...], out: str, **options) -> None:  # type: ignore[no-untyped-def]
    """Train METHODS (comma-separated) over a grid; rerunning skips finished cells and resumes the unfinished one.

    Cells are scored on the validation split (eval.split=val) unless --set eval.split=test says otherwise.

    \b
    selfsup sweep parallel-dae --grid alpha=1e-5,1e-3,1e-1,10 --out sweeps/alpha
    selfsup sweep byol,simsiam --grid seed=0,1,2 --epochs 5 --out sweeps/noncontrastive
    selfsup report sweeps/alpha
    """
    from selfsup.experiments import sweep as sweeps

    names = [m.strip() for m in methods.split(",") if m.strip()]
    given = {name: options.get(name) for name in OPTION_KEYS}
    bases = sweeps.method_bases(names, options.get("recipe"), options.get("config_file"), given,
                                parse_sets(options["sets"]))
    grid = sweeps.parse_grid(grids)
    cells = sweeps.plan(names, grid, bases)
    folder = Path(out)
    sweeps.write_sweep_file(folder, names, grid, bases[names[0]])
    click.echo(f"sweep of {len(cells)} cells into {folder}")
    outcome = sweeps.run_sweep(cells, folder, progress=not options["quiet"], echo=click.echo)
    failed = [name for name, status in outcome.items() if status == "failed"]
    click.echo(f"{len(outcome) - len(failed)} done, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}"
               f"; `selfsup report {folder}` builds the tables and plots")
    if failed:
        raise Fail(f"{len(failed)} of {len(outcome)} cells failed (see error.txt in each)", 1)


@cli.command()
@click.argument("method")
@run_options
@click.option("--trials", type=int, help="Trials in all, across every process sharing the study (default 20 "
              "without --budget).")
@click.option("--budget", help="Time this process may search, e.g. 30m, 2h, 90s; with --trials, whichever ends first.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Study folder: study.db (rerun to resume; share it to search from several processes), recipe.yaml, "
                   "tune.json, trials.csv, trials/NNNN run directories.")
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Stop a trial whose validation kNN trails the median of finished trials at the same point.")
@click.option("--search-seed", default=0, show_default=True, type=int, help="Seeds the sampler (TPE).")
@click.option("--storage", help="A database URL for the study instead of OUT/study.db, e.g. postgresql://host/db: "
              "processes on several machines share it (each writes its trials' run directories to its own --out).")
def tune(method: str, trials: int | None, budget: str | None, out: str, prune: bool, search_seed: int,
         storage: str | None, **options) -> None:  # type: ignore[no-untyped-def]
    """Search a recipe for METHOD on your data: short trials (--epochs, --limit set the budget of each) scored by
    the validation kNN of the online monitor, never the test split; writes OUT/recipe.yaml for `train --config`.

    \b
    selfsup tune simclr --dataset fashion-mnist --limit 10000 --epochs 2 --trials 20 --out tune/simclr
    selfsup train simclr --config tune/simclr/recipe.yaml --epochs 20 --out runs/simclr-tuned
    selfsup report tune/simclr
    """
    from selfsup.experiments.tune import parse_budget
    from selfsup.experiments.tune import tune as search

    seconds = parse_budget(budget) if budget is not None else None
    config = config_from_options(method, options)
    result = search(config, out, trials if trials is not None or seconds is not None else 20, seconds, prune,
                    search_seed, progress=not options["quiet"], storage=storage)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.trials.items()))
    click.echo(f"trials: {counts}; best validation kNN {result.best_value:.4f} with "
               + ", ".join(f"{key}={value}" for key, value in sorted(result.best_params.items())))
    click.echo(f"wrote {result.recipe}; train it with: selfsup train {method} --config {result.recipe}; "
               f"`selfsup report {out}` draws the study")


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--map", "embedding", type=click.Choice(["tsne", "umap", "none"]), default="tsne", show_default=True,
              help="The 2-d map of each run's scored-split representation (test; val for runs scored on val). "
                   "umap needs umap-learn.")
@click.option("--map-points", default=1000, show_default=True, type=click.IntRange(min=10),
              help="Test images in each map.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Show the raw-pixel and random-init levels of the runs' dataset and encoder in every table and metric "
                   "plot (measured once, cached in ~/.cache/selfsup/baselines).")
@click.option("--explore", is_flag=True,
              help="Also build each finished run's `selfsup explore` page (RUN/explore.html) and link it from the "
                   "runs table (pages already built are linked without this).")
def report(folder: str, embedding: str, map_points: int, baselines: bool, explore: bool) -> None:
    """Tables and plots of the runs in FOLDER: results.csv, report.md, report.html, plots/*.png."""
    from selfsup.experiments.report import build_report
    from selfsup.experiments.tune import TUNE_FILE

    if (Path(folder) / TUNE_FILE).exists():  # a `selfsup tune` study
        from selfsup.experiments.tune_report import build_tune_report

        outputs = build_tune_report(folder)
    else:
        outputs = build_report(folder, None if embedding == "none" else embedding, map_points, baselines, explore)
    for label, path in outputs.items():
        click.echo(f"{label:<16} {path}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--against", type=click.Choice(["random-init"]),
              help="Beside the run, the random-init encoder of its backbone (the baseline's), selection linked.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The split shown; the fitting split is the neighbours' bank, as in the evaluation.")
@click.option("--n", "count", default=5000, show_default=True, type=click.IntRange(min=1),
              help="Images of the split on the map (a fixed random subset).")
@click.option("--k", "neighbours", default=5, show_default=True, type=click.IntRange(min=1, max=50),
              help="Neighbours shown for a pinned image (of the evaluation's k voting ones).")
@click.option("--projection", type=click.Choice(["auto", "umap", "tsne"]), default="auto", show_default=True,
              help="The 2-d map: t-SNE (scikit-learn; auto), or UMAP (needs umap-learn; slower to start).")
@click.option("--out", type=click.Path(dir_okay=False), help="Default: RUN/explore.html (first run).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def explore(runs: tuple[str, ...], against: str | None, split: str, count: int, neighbours: int, projection: str,
            out: str | None, quiet: bool) -> None:
    """One self-contained page of what RUNS learned (one run, or two side by side): a map of the split's
    representation with every image on hover, k-means and kNN colours, a class filter, a click for an image's
    nearest neighbours, the kNN confusion matrix. Opens offline.

      selfsup explore runs/simclr --against random-init
      selfsup explore runs/simclr runs/byol --split val --out compare.html
    """
    from selfsup.experiments.explore import explore as build
    from selfsup.experiments.explore_page import write_page

    exploration = build(list(runs), against, split, count, neighbours, projection, progress=not quiet)
    target = Path(out) if out is not None else Path(runs[0]) / "explore.html"
    title = "selfsup explore: " + " vs ".join([Path(r).name for r in runs] + ([against] if against else []))
    write_page(exploration, target, title)
    for rep in exploration.representations:
        click.echo(f"{rep.label}: kNN accuracy {rep.accuracy:.4f} over all {rep.scored} {split} images")
    click.echo(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--labels", "fractions", multiple=True, type=float, default=(0.01, 0.1), show_default=True,
              help="Fraction of the labelled training images, in (0, 1]; repeatable.")
@click.option("--epochs", default=FINETUNE.epochs, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=FINETUNE.lr, show_default=True, type=float, help="The linear head's learning rate.")
@click.option("--encoder-lr", default=FINETUNE.encoder_lr, show_default=True, type=float,
              help="The encoder's learning rate.")
@click.option("--batch-size", default=FINETUNE.batch_size, show_default=True, type=click.IntRange(min=1))
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(run_dir: str, fractions: tuple[float, ...], epochs: int, lr: float, encoder_lr: float, batch_size: int,
             quiet: bool) -> None:
    """Fine-tune RUN_DIR's encoder + a linear head with a fraction of the labels, beside a random-init encoder
    fine-tuned the same way and the frozen linear probe on the same labels; writes RUN_DIR/finetune.json."""
    from selfsup.experiments.finetune import check_fraction, finetune_run

    for fraction in fractions:
        check_fraction(fraction)
    config = FinetuneConfig(epochs=epochs, lr=lr, encoder_lr=encoder_lr, batch_size=batch_size)
    click.echo("labels  images  linear probe  fine-tuned  random-init fine-tuned")
    for fraction in fractions:
        r = finetune_run(run_dir, fraction, config, not quiet)
        click.echo(f"{fraction:<7g} {r['labelled_images']:<7d} {r['linear_probe']['accuracy']:<13.4f} "
                   f"{r['pretrained']['accuracy']:<11.4f} {r['random_init']['accuracy']:.4f}")
    click.echo(f"wrote {Path(run_dir) / 'finetune.json'}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--a", "a", type=int, required=True, help="Index of the first image in --split.")
@click.option("--b", "b", type=int, required=True, help="Index of the second image.")
@click.option("--steps", default=8, show_default=True, type=int, help="Images in the strip, endpoints included.")
@click.option("--split", default="test", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="PNG path. Default: RUN_DIR/plots/interpolate-*.png")
def interpolate(run_dir: str, a: int, b: int, steps: int, split: str, out: str | None) -> None:
    """Decode (1 - w) z_a + w z_b, w from 0 to 1, into a PNG strip (reconstruction runs)."""
    from selfsup.experiments.latent import interpolate as run

    click.echo(f"wrote {run(run_dir, a, b, steps, split, out)}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--n", "n", default=16, show_default=True, type=int, help="Number of samples.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(dir_okay=False), help="PNG path. Default: RUN_DIR/plots/samples.png")
def sample(run_dir: str, n: int, seed: int, out: str | None) -> None:
    """Images decoded from codes drawn from the prior N(0, I) (VAE runs)."""
    from selfsup.experiments.latent import sample as run

    click.echo(f"wrote {run(run_dir, n, seed, out)}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--normal-class", type=int, help="The label treated as normal; the others are anomalies (AUROC).")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Instead: score every image below this folder into a CSV, most anomalous first.")
@click.option("--out", type=click.Path(dir_okay=False), help="With --images: the CSV (default RUN/anomaly-DIR.csv).")
@click.option("--any-training", is_flag=True, help="Score a run trained on other classes than the normal one anyway "
              "(refused by default: its AUROC is not the anomaly-detection protocol).")
def anomaly(run_dir: str, normal_class: int | None, images: str | None, out: str | None, any_training: bool) -> None:
    """Reconstruction-error anomaly detection: AUROC on the test split of a run trained on class C alone
    (--set data.classes=[C]); or --images DIR: every image's score into a CSV."""
    from selfsup.experiments.latent import anomaly as run
    from selfsup.experiments.latent import score_images

    if images is not None:
        click.echo(f"wrote {score_images(run_dir, images, out)}")
        return
    if normal_class is None:
        raise Fail("give --normal-class C (AUROC on the test split) or --images DIR (scores into a CSV)", EXIT_USER)

    result = run(run_dir, normal_class, any_training=any_training)
    click.echo(f"AUROC {result['auroc']:.4f} (class {normal_class} normal; mean error normal "
               f"{result['mean_error_normal']:.5f}, anomalies {result['mean_error_anomalies']:.5f})")
    if not result["trained_on_normal_only"]:
        click.echo(f"WARNING: the run was trained on {result['trained_on_classes'] or 'all classes'}, not on class "
                   f"{normal_class} alone (--any-training): this AUROC is not the anomaly-detection protocol; train "
                   f"with --set data.classes=[{normal_class}] for that", err=True)
    click.echo(f"wrote {Path(run_dir) / f'anomaly-class{normal_class}.json'}")


@cli.command(name="export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["state-dict", "safetensors", "torchscript", "onnx"]),
              default="state-dict", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write.")
def export_command(run_dir: str, fmt: str, out: str) -> None:
    """The trained encoder alone, for use without selfsup (see `selfsup.experiments.export`)."""
    from selfsup.experiments.export import export

    result = export(run_dir, fmt, out)
    click.echo(f"wrote {', '.join(result['files'])} ({result['backbone']}, {result['in_channels']}x"
               f"{result['image_size']}px); load with {result['load']}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--images", required=True, help="A folder of images (class subfolders give labels) or a dataset name.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="FILE.npy (features; FILE.csv beside it names each row's file and label) or FILE.pt (a dict).")
@click.option("--split", default="test", show_default=True, help="The split, when --images names a dataset.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32"]), default="auto", show_default=True,
              help="auto: the inference mode this device measured fastest (bf16 where it pays); fp32: exact.")
def embed(run_dir: str, images: str, out: str, split: str, device: str, precision: str) -> None:
    """The run's representation of every image in --images, written to --out."""
    from selfsup.experiments.embed import embed_images, write_embeddings

    embeddings = embed_images(run_dir, images, split, device, precision=precision)
    written = write_embeddings(embeddings, Path(out))
    click.echo(f"{embeddings.features.shape[0]} images -> {embeddings.features.shape[1]}-d features; wrote "
               + ", ".join(str(path) for path in written))


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--metric", type=click.Choice(["cosine", "euclidean"]), default="cosine", show_default=True)
@click.option("--k", "k", default=10, show_default=True, type=int, help="Neighbours stored per image.")
@click.option("--out", type=click.Path(dir_okay=False), help="Default: RUN_DIR/neighbors-METRIC.pt")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Mine on another training set than the run's, e.g. data.limit=10000 (must match nn-byol's).")
@click.option("--device", default="cpu", show_default=True)
def neighbors(run_dir: str, metric: str, k: int, out: str | None, sets: tuple[str, ...], device: str) -> None:
    """Embed the run's training set and store each image's nearest neighbours, for `train nn-byol --set
    neighbors=RUN`."""
    from selfsup.experiments.neighbors import mine

    result = mine(run_dir, metric, k, out, parse_sets(sets), device)
    precision = ", ".join(f"precision@{key} {value:.4f}" for key, value in result["precision_at_k"].items())
    click.echo(f"{result['size']} images of {result['dataset']}, {metric} neighbours in the {result['method']} "
               f"representation: {precision}")
    click.echo(f"wrote {result['path']}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--baseline", "baseline_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A `selfsup baseline --out` folder (raw-pixels/ and random-init/ inside).")
def compare(runs: tuple[str, ...], baseline_dir: str) -> None:
    """Each run's probe, kNN and k-means NMI beside the baselines, with the margins in points."""
    from selfsup.experiments.compare import format_table, margins, read_evaluation

    def table() -> str:
        evaluations = {Path(run).name: read_evaluation(Path(run)) for run in runs}
        baselines = {name: read_evaluation(Path(baseline_dir) / name) for name in ("random-init", "raw-pixels")}
        return format_table(*margins(evaluations, baselines))

    click.echo(table())


@cli.command(name="keys")
@click.argument("method", default="simclr")
def keys_command(method: str) -> None:
    """List every config key `--set` accepts for METHOD."""
    from selfsup.methods import get_method

    params = get_method(method).Config
    click.echo("\n".join(valid_keys(params)))


def main() -> None:
    try:
        cli.main(prog_name="selfsup", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
