"""The fuzz campaign: many generated command lines and file corruptions through the real command line, each judged
as tests/test_fuzz.py judges its few (exit 0, 1 or 2, no traceback, an exit 2 leaves the run directory unchanged).

    python bench/fuzz.py --inputs 10000 --out bench/results/fuzz.json

Two thirds of the inputs are generated `train` command lines (options and --set values), one third corruptions
spread over every file kind in tests/fuzz_cases.TARGETS. The JSON records how many inputs were tried per kind,
the exit codes, how many ran past the time limit, and every finding with the input that caused it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_cases import TARGETS, corrupted_run, corruptions, json_corruptions, make_inputs, run, train_args  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "2", "--batch-size", "64", "--quiet",
         "--precision", "fp32", "--device", "cpu", "--set", "eval.probe_epochs=2"]


def campaign(total: int, root: Path, seed: int) -> dict:  # type: ignore[type-arg]
    tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)  # type: ignore[type-arg]
    findings: list[dict] = []  # type: ignore[type-arg]
    bar = tqdm(total=total, unit="input")

    def record(kind: str, description: object, outcome) -> None:  # type: ignore[no-untyped-def]
        tally[kind]["tried"] += 1
        tally[kind]["timeout" if outcome.code is None else f"exit {outcome.code}"] += 1
        if outcome.problem is not None:
            tally[kind]["findings"] += 1
            findings.append({"kind": kind, "input": description, "problem": outcome.problem,
                             "output": outcome.output[-3000:]})
        bar.update(1)
        bar.set_postfix(findings=len(findings), refresh=False)

    outcome = run(["train", "simclr", *QUICK, "--out", str(root / "trained")], seconds=600)
    assert outcome.code == 0, outcome.output
    inputs = make_inputs(root / "inputs", root / "trained")

    cli_inputs = total * 2 // 3
    out = root / "out"

    @settings(max_examples=cli_inputs, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(args=train_args())
    def command_lines(args: list[str]) -> None:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        record("train command line", args, run([*args, "--out", str(out)], seconds=20))

    command_lines()
    per_target = (total - cli_inputs) // len(TARGETS)
    for target, (relative, is_json, _, _) in TARGETS.items():
        first, _, rest = relative.partition("/")
        original = (inputs[first] / rest if rest else inputs[first]).read_bytes()
        strategy = json_corruptions(original) if is_json else corruptions(original)

        def corrupt_one(target: str, strategy) -> None:  # type: ignore[no-untyped-def]
            @settings(max_examples=per_target, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(data=strategy)
            def corrupt(data: bytes) -> None:
                outcome = corrupted_run(inputs, target, data, seconds=60)
                record(target, {"bytes": len(data), "head": data[:48].hex()}, outcome)

            corrupt()

        corrupt_one(target, strategy)
    bar.close()
    return {"tally": {kind: dict(counter) for kind, counter in tally.items()}, "findings": findings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/fuzz.json")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # the commands' own warnings would drown the progress bar
    tic = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        result = campaign(args.inputs, Path(tmp), args.seed)
    tried = sum(counter["tried"] for counter in result["tally"].values())
    report = {"command": f"python bench/fuzz.py --inputs {args.inputs}", "inputs_tried": tried,
              "finding_count": len(result["findings"]),
              "tracebacks": sum(f["problem"] == "traceback" for f in result["findings"]),
              "seconds": round(time.time() - tic, 1), "machine": platform.processor() or platform.machine(),
              **result}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"{tried} inputs, {report['finding_count']} findings ({report['tracebacks']} tracebacks) in "
          f"{report['seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
