"""The fuzz campaign: many generated command lines and file corruptions through the real command line, each judged
as tests/test_fuzz.py judges its few (exit 0, 1 or 2, no traceback, an exit 2 leaves the run directory unchanged).

    python bench/fuzz.py --inputs 10000 --out bench/results/fuzz.json

Two thirds of the inputs are generated `train` command lines (options and --set values), a twentieth generated
`eval` settings (evaluation and data keys, splits; each runs an evaluation, so they are the costly ones), the rest corruptions spread over every file kind in
tests/fuzz_cases.TARGETS. Inputs run in-process in a worker process (fast); each
input is written down before it runs, so an input that kills the worker (a crash in native code) is recorded as a
finding and a new worker goes on with the rest. The JSON records how many inputs were tried per kind, the exit
codes, how many ran past the time limit, and every finding with the input that caused it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "2", "--batch-size", "64", "--quiet",
         "--precision", "fp32", "--device", "cpu", "--set", "eval.probe_epochs=2"]


def plan(total: int, kinds: list[str] | None = None) -> list[tuple[str, int]]:
    """(kind, how many): two thirds command lines, a twentieth evaluation settings, the rest spread over the file
    targets; or ``total`` spread over ``kinds`` alone (a rerun of some kinds after a fix)."""
    from fuzz_cases import TARGETS

    if kinds:
        return [(kind, total // len(kinds)) for kind in kinds]
    cli_inputs = total * 2 // 3
    eval_inputs = total // 20
    per_target = (total - cli_inputs - eval_inputs) // len(TARGETS)
    return [("train command line", cli_inputs), ("eval command line", eval_inputs)] + [
        (target, per_target) for target in TARGETS]


def worker(kind: str, count: int, seed: int, root: Path, results: Path, inflight: Path) -> None:
    """Run ``count`` generated inputs of ``kind``; one JSON line each to ``results``; the input about to run in
    ``inflight``."""
    import logging

    import fuzz_cases as cases
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed

    logging.disable(logging.WARNING)
    import torch

    torch.set_num_threads(1)  # two campaigns may run side by side on two cores
    def record(description: object, outcome) -> None:  # type: ignore[no-untyped-def]
        line = {"kind": kind, "code": outcome.code, "problem": outcome.problem}
        if outcome.problem is not None:
            line.update(input=description, output=outcome.output[-3000:])
        with open(results, "a") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    def note(description: object) -> None:
        inflight.write_text(json.dumps({"kind": kind, "input": description}, default=str))

    quiet = settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    if kind == "train command line":
        out = root / "out"

        @hypothesis_seed(seed)
        @quiet
        @given(args=cases.train_args())
        def command_lines(args: list[str]) -> None:
            shutil.rmtree(out, ignore_errors=True)
            note(args)
            record(args, cases.run([*args, "--out", str(out)], seconds=20))

        command_lines()
        return
    trained = root / "trained"
    if not trained.exists():
        outcome = cases.run(["train", "simclr", *QUICK, "--out", str(trained)], seconds=600)
        assert outcome.code == 0, outcome.output
    shutil.rmtree(root / "inputs", ignore_errors=True)
    inputs = cases.make_inputs(root / "inputs", trained)
    if kind == "eval command line":
        @hypothesis_seed(seed)
        @quiet
        @given(args=cases.eval_args(inputs["run"]))
        def evaluations(args: list[str]) -> None:
            note(args)
            record(args, cases.run(args, inputs["run"], seconds=60))
            cases.restore(inputs)

        evaluations()
        return
    relative, is_json, _, _ = cases.TARGETS[kind]
    first, _, rest = relative.partition("/")
    original = (inputs[first] / rest if rest else inputs[first]).read_bytes()
    strategy = cases.json_corruptions(original) if is_json else cases.corruptions(original)

    @hypothesis_seed(seed)
    @quiet
    @given(data=strategy)
    def corrupt(data: bytes) -> None:
        description = {"bytes": len(data), "head": data[:48].hex()}
        note(description)
        record(description, cases.corrupted_run(inputs, kind, data, seconds=60))

    corrupt()


def campaign(total: int, seed: int, root: Path, kinds: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    """Every kind's inputs through workers; a worker that dies is replaced and its in-flight input recorded."""
    from tqdm.auto import tqdm

    results, inflight = root / "results.jsonl", root / "inflight.json"
    bar = tqdm(total=total, unit="input")
    crashes = []
    for kind, count in plan(total, kinds):
        attempt = 0
        while True:
            done = sum(1 for line in results.read_text().splitlines() if json.loads(line)["kind"] == kind) \
                if results.exists() else 0
            if done >= count or attempt > 20:
                break
            inflight.unlink(missing_ok=True)
            command = [sys.executable, __file__, "--worker", kind, "--inputs", str(count - done),
                       "--seed", str(seed * 1000 + attempt), "--root", str(root)]
            finished = subprocess.run(command, env={**os.environ, "XDG_CACHE_HOME": str(root / "cache")})
            if finished.returncode != 0:  # the worker died: its in-flight input is a finding
                lost = json.loads(inflight.read_text()) if inflight.exists() else {"kind": kind, "input": None}
                crashes.append({**lost, "problem": f"the process died (exit {finished.returncode})"})
                with open(results, "a") as handle:
                    handle.write(json.dumps({"kind": kind, "code": finished.returncode, "problem": "crash"}) + "\n")
            attempt += 1
            bar.n = sum(1 for _ in results.read_text().splitlines()) if results.exists() else 0
            bar.refresh()
    bar.close()
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)  # type: ignore[type-arg]
    for line in lines:
        tally[line["kind"]]["tried"] += 1
        tally[line["kind"]]["timeout" if line["code"] is None else f"exit {line['code']}"] += 1
        if line["problem"] is not None:
            tally[line["kind"]]["findings"] += 1
    findings = [line for line in lines if line["problem"] not in (None, "crash")] + crashes
    return {"tally": {kind: dict(counter) for kind, counter in tally.items()}, "findings": findings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/fuzz.json")
    parser.add_argument("--kinds", help="Only these kinds, comma-separated (e.g. 'metrics.jsonl (report)').")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        root = Path(args.root)
        worker(args.worker, args.inputs, args.seed, root, root / "results.jsonl", root / "inflight.json")
        return
    tic = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
        result = campaign(args.inputs, args.seed, Path(tmp), kinds)
    tried = sum(counter["tried"] for counter in result["tally"].values())
    kinds_flag = f" --kinds '{args.kinds}'" if args.kinds else ""
    report = {"command": f"python bench/fuzz.py --inputs {args.inputs} --seed {args.seed}{kinds_flag}",
              "inputs_tried": tried,
              "finding_count": len(result["findings"]),
              "tracebacks": sum(f["problem"] == "traceback" for f in result["findings"]),
              "crashes": sum(f["problem"].startswith("the process died") for f in result["findings"]),
              "seconds": round(time.time() - tic, 1), "machine": platform.processor() or platform.machine(),
              **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"{tried} inputs, {report['finding_count']} findings ({report['tracebacks']} tracebacks, "
          f"{report['crashes']} crashes) in {report['seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
