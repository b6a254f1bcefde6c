"""Put an adopted study recipe's standard-budget run into the accuracy table (issue 23, item 1).

A study recipe is run at the standard budget on the validation split (bench/results/runs-tuned/METHOD-full-x4,
eval.json scored on val); once bench/tuned_pick.py adopts it, its test split is read once (`selfsup eval RUN
--split test`, which writes eval-test.json). This script makes the table's copy of that run,
bench/results/runs/METHOD-full-x4, from those files:

- config.yaml: the run's config with eval.split set to test (the split the table scores on);
- eval.json: eval-test.json, with the training record of the run's own eval.json added;
- metrics.jsonl and plots/: as they are.

The checkpoint is not copied (the committed results hold none). The run the table showed before is kept under
--keep-old NAME (bench/results/runs/NAME); without it, an existing table run is refused. Nothing is changed when
a check fails (exit 2, one message).

    python bench/promote_run.py rotnet --keep-old rotnet-seed-settings-full-x4
    python bench/promote_run.py autodecoder --from bench/results/runs-tuned/autodecoder-full-x4 --keep-old ...

Then `selfsup bench accuracy --budget standard --existing-only` regenerates the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

from selfsup.eval.result import Evaluation
from selfsup.train.checkpoint import write_atomic
from selfsup.train.rundir import RunDirectoryError, read_run_config, write_json

RESULTS = Path(__file__).resolve().parent / "results"


class PromoteError(Exception):
    """A check failed; nothing was changed."""


def promoted_files(source: Path) -> tuple[str, Evaluation]:
    """The table copy's config.yaml text and eval.json, from the run in ``source``."""
    for name in ("config.yaml", "eval.json", "eval-test.json"):
        if not (source / name).is_file():
            raise PromoteError(f"{source} has no {name}: run the study recipe at the standard budget and "
                               f"`selfsup eval {source} --split test` first")
    try:
        config = read_run_config(source)
        validation, test = Evaluation.read(source / "eval.json"), Evaluation.read(source / "eval-test.json")
    except RunDirectoryError as error:
        raise PromoteError(str(error)) from None
    if validation.scored_on != "val" or test.scored_on != "test":
        raise PromoteError(f"{source}: eval.json should be scored on val and eval-test.json on test (they are "
                           f"{validation.scored_on} and {test.scored_on})")
    if validation.training is None:
        raise PromoteError(f"{source}/eval.json holds no training record; it is not the run's own evaluation")
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, split="test"))
    return config.to_yaml(), dataclasses.replace(test, training=validation.training)


def promote(source: Path, target: Path, keep_old: Path | None) -> None:
    config_text, evaluation = promoted_files(source)
    if target.exists() and keep_old is None:
        raise PromoteError(f"{target} exists: pass --keep-old NAME to keep it as {target.parent}/NAME")
    if keep_old is not None and keep_old.exists():
        raise PromoteError(f"{keep_old} exists; choose another --keep-old name")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        staged = Path(scratch) / target.name
        staged.mkdir()
        write_atomic(staged / "config.yaml", config_text)
        write_json(staged / "eval.json", evaluation.to_dict())
        if (source / "metrics.jsonl").is_file():
            shutil.copy2(source / "metrics.jsonl", staged / "metrics.jsonl")
        if (source / "plots").is_dir():
            shutil.copytree(source / "plots", staged / "plots")
        if target.exists():
            target.rename(keep_old)
        staged.rename(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--from", dest="source", type=Path, help="default: bench/results/runs-tuned/METHOD-full-x4")
    parser.add_argument("--results", type=Path, default=RESULTS, help="default: bench/results")
    parser.add_argument("--keep-old", help="keep the table's current run as RESULTS/runs/KEEP_OLD")
    args = parser.parse_args(argv)
    runs = args.results / "runs"
    source = args.source or args.results / "runs-tuned" / f"{args.method}-full-x4"
    try:
        promote(source, runs / f"{args.method}-full-x4", runs / args.keep_old if args.keep_old else None)
    except PromoteError as error:
        print(f"promote_run: {error}", file=sys.stderr)
        return 2
    print(f"{runs / args.method}-full-x4 is now {source}'s test evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
