"""Generated inputs for the command line (hypothesis strategies) and the harness that judges each outcome.

Shared by tests/test_fuzz.py (a bounded number of examples in CI) and bench/fuzz.py (the long campaign). An
outcome is good when the command exits 0, 1 or 2 without a traceback and, on exit 2, leaves the run directory
byte for byte as it was; anything else is a finding, recorded with the input that caused it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import signal
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from hypothesis import strategies as st

from selfsup.cli import cli
from selfsup.config import valid_keys
from selfsup.methods import get_method

# a run that costs a fraction of a second when the generated value lets it start
TINY = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "1", "--batch-size", "32", "--limit", "64",
        "--quiet", "--precision", "fp32", "--device", "cpu", "--no-eval", "--set", "monitor.enabled=false",
        "--set", "data.download=false", "--set", "train.compile=off"]
# never generated: a download (the network), and keys whose only effect is where files go
EXCLUDED_KEYS = {"data.download", "data.data_dir", "data.eval_data_dir"}

SPECIAL = ["inf", "-inf", "nan", "NaN", ".inf", "-.inf", ".nan", "", " ", "null", "none", "~", "[]", "{}", "[1, 2]",
           "true", "no", "1e400", "-1e400", "-0", "0x10", "1_000", "1e-400", "9" * 40, "-" + "9" * 40, "🙂", "é",
           "\u0000", '"', "'", "a: b", "[", "{", "- x", "!!python/object/apply:os.system ['true']", "&a [*a]",
           "2.5", "-1", "0", "1", "3", "65", "1000000000000", "cuda", "cuda:7", "auto", "cpu", "sgd", "lars",
           "fashion-mnist", "image-folder", "stl10", "conv6", "resnet18", "tsne"]

values = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=24),
)

METHODS_FUZZED = ["simclr", "byol", "simsiam", "directpred", "barlow-twins", "rotnet", "ae", "dae", "vae", "cae",
                  "parallel-dae", "autodecoder"]
OPTIONS = ["--epochs", "--batch-size", "--lr", "--seed", "--limit", "--image-size", "--channels", "--precision",
           "--device", "--logger", "--recipe", "--dataset", "--backbone"]


def set_keys(method: str) -> list[str]:
    keys = [key for key in valid_keys(get_method(method).Config) if key not in EXCLUDED_KEYS]
    return keys + ["lr", "temperature", "bogus", "optim.", ".lr", "optim.lr.x", ""]


@st.composite
def train_args(draw: st.DrawFn) -> list[str]:
    """`selfsup train METHOD` with the tiny run's options, then one to three generated options or --set pairs."""
    method = draw(st.sampled_from(METHODS_FUZZED))
    args = ["train", method, *TINY]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            args += [draw(st.sampled_from(OPTIONS)), draw(values)]
        else:
            args += ["--set", f"{draw(st.sampled_from(set_keys(method)))}={draw(values)}"]
    return args


def eval_keys() -> list[str]:
    return [key for key in valid_keys() if key.startswith(("eval.", "data.")) and key not in EXCLUDED_KEYS]


@st.composite
def eval_args(draw: st.DrawFn, run_dir: Path) -> list[str]:
    """`selfsup eval RUN` with one or two generated --set pairs (evaluation and data keys) or --split values."""
    args = ["eval", str(run_dir), "--set", "eval.probe_epochs=2"]
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.integers(0, 4)) == 0:
            args += ["--split", draw(values)]
        else:
            args += ["--set", f"{draw(st.sampled_from(eval_keys()))}={draw(values)}"]
    return args


# -- file corruptions --------------------------------------------------------------------------------------

@st.composite
def corruptions(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` cut short, with flipped bits, overwritten, emptied, grown or replaced."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "empty", "append", "replace"]))
    size = len(original)
    if kind == "truncate" and size:
        return original[: draw(st.integers(0, size - 1))]
    if kind == "flip" and size:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 16))):
            data[draw(st.integers(0, size - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "overwrite" and size:
        start = draw(st.integers(0, size - 1))
        patch = draw(st.binary(min_size=1, max_size=64))
        return original[:start] + patch + original[start + len(patch):]
    if kind == "append":
        return original + draw(st.binary(min_size=1, max_size=256))
    if kind == "replace":
        return draw(st.binary(max_size=512))
    return b""


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=3), max_leaves=8)


@st.composite
def json_corruptions(draw: st.DrawFn, original: bytes) -> bytes:
    """A JSON file corrupted as bytes, or valid JSON of the wrong shape (a list, a number, a section replaced)."""
    if draw(st.booleans()):
        return draw(corruptions(original))
    try:
        document = json.loads(original)
    except ValueError:
        document = {}
    if isinstance(document, dict) and document and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(document)))
        document[key] = draw(json_values)
    else:
        document = draw(json_values)
    return json.dumps(document).encode()


# -- the harness -------------------------------------------------------------------------------------------

class Timeout(BaseException):
    """A generated input that runs longer than the harness waits (not a finding: long runs are allowed)."""


@contextmanager
def time_limit(seconds: int):  # type: ignore[no-untyped-def]
    def expire(signum, frame):  # type: ignore[no-untyped-def]
        raise Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    code: int | None  # None: timed out
    output: str
    problem: str | None  # None: a good outcome


def snapshot(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run(args: list[str], watched: Path | None = None, seconds: int = 30) -> Outcome:
    """Run the command line in-process on ``args``; judge the exit code, the output and ``watched`` (a run
    directory that an exit 2 must leave unchanged)."""
    before = snapshot(watched) if watched is not None else None
    try:
        with time_limit(seconds):
            result = CliRunner().invoke(cli, args, catch_exceptions=True)
    except Timeout:
        return Outcome(None, "", None)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))
    problem = None
    if "Traceback" in output:
        problem = "traceback"
    elif result.exit_code not in (0, 1, 2):
        problem = f"exit code {result.exit_code}"
    elif result.exit_code == 2 and before is not None and snapshot(watched) != before:  # type: ignore[arg-type]
        problem = "exit 2 changed the run directory"
    return Outcome(result.exit_code, output, problem)


# -- the files every corruption target starts from ---------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_inputs(root: Path, trained: Path) -> dict[str, Path]:
    """A copy of a finished run, a baseline folder, a neighbour file, an image folder, an MNIST-format folder and a
    CIFAR-format folder under ``root``: the pristine inputs that each target corrupts one file of."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = {"run": root / "runs" / "run", "pristine": root / "pristine-run"}
    shutil.copytree(trained, paths["run"])
    shutil.copytree(trained, paths["pristine"])
    baseline = root / "baseline"
    for name in ("raw-pixels", "random-init"):
        (baseline / name).mkdir(parents=True)
        shutil.copy(trained / "eval.json", baseline / name / "eval.json")
    paths["baseline"] = baseline
    paths["neighbors"] = root / "neighbors-cosine.pt"
    torch.save({"indices": torch.zeros(64, 2, dtype=torch.long), "size": 64, "dataset": "synthetic",
                "fingerprint": "0", "metric": "cosine"}, paths["neighbors"])
    images = root / "images"
    for c in range(2):
        (images / "train" / f"c{c}").mkdir(parents=True)
        (images / "test" / f"c{c}").mkdir(parents=True)
        for i in range(24):
            split = "train" if i < 20 else "test"
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(images / split / f"c{c}" / f"{i}.png")
    paths["images"] = images
    mnist = root / "mnist"
    mnist.mkdir()
    for prefix, n in (("train", 64), ("t10k", 32)):
        write_idx(mnist / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(mnist / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    paths["mnist"] = mnist
    cifar = root / "cifar" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(cifar / name, "wb") as handle:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, 20).tolist()}, handle, protocol=2)
    paths["cifar"] = cifar.parent
    return paths


QUICK_EVAL = ["--set", "eval.probe_epochs=2", "--set", "eval.kmeans_restarts=1"]

# target -> (file to corrupt, relative to the inputs; JSON?; the command; the run directory exit 2 must not change)
TARGETS = {
    "eval.json (report)": ("run/eval.json", True, lambda p: ["report", str(p["run"].parent), "--map", "none",
                                                           "--no-baselines"], "run"),
    "eval.json (compare)": ("run/eval.json", True, lambda p: ["compare", str(p["run"]), "--baseline",
                                                            str(p["baseline"])], "run"),
    "metrics.jsonl (report)": ("run/metrics.jsonl", False, lambda p: ["report", str(p["run"].parent), "--map",
                                                                    "none", "--no-baselines"], "run"),
    "config.yaml (eval)": ("run/config.yaml", False, lambda p: ["eval", str(p["run"]), *QUICK_EVAL], "run"),
    "checkpoint (eval)": ("run/checkpoints/last.pt", False, lambda p: ["eval", str(p["run"]), *QUICK_EVAL], "run"),
    "checkpoint (resume)": ("run/checkpoints/last.pt", False, lambda p: [
        "train", "simclr", "--dataset", "synthetic", "--backbone", "mlp", "--epochs", "3", "--batch-size", "64",
        "--quiet", "--precision", "fp32", "--device", "cpu", "--set", "eval.probe_epochs=2", "--no-eval",
        "--out", str(p["run"]), "--resume"], "run"),
    "neighbour file": ("neighbors", False, lambda p: ["train", "nn-byol", *TINY, "--set", "neighbors=" + str(p["neighbors"]),
                                                      "--out", str(p["run"].parent / "nn")], "run"),
    "image file": ("images/train/c0/3.png", False, lambda p: [
        "train", "simclr", *TINY, "--dataset", "image-folder", "--data-dir", str(p["images"]), "--image-size", "8",
        "--limit", "32", "--out", str(p["run"].parent / "img")], "run"),
    "IDX file": ("mnist/train-images-idx3-ubyte", False, lambda p: [
        "train", "simclr", *TINY, "--dataset", "mnist", "--data-dir", str(p["mnist"]), "--set", "data.val_size=0",
        "--out", str(p["run"].parent / "idx")], "run"),
    "CIFAR batch": ("cifar/cifar-10-batches-py/test_batch", False, lambda p: [
        "baseline", "--dataset", "cifar10", "--data-dir", str(p["cifar"]), "--backbone", "mlp", "--out",
        str(p["run"].parent / "base"), "--set", "data.download=false", "--set", "data.val_size=0",
        "--set", "eval.probe_epochs=2", "--set", "eval.kmeans_restarts=1"], "run"),
}


def corrupted_run(paths: dict[str, Path], target: str, data: bytes, seconds: int = 60) -> Outcome:
    """Write ``data`` over the target's file, run its command, restore the file."""
    relative, _, command, watched = TARGETS[target]
    first, _, rest = relative.partition("/")
    path = paths[first] / rest if rest else paths[first]
    original = path.read_bytes()
    path.write_bytes(data)
    try:
        return run(command(paths), paths[watched], seconds)
    finally:
        path.write_bytes(original)
        restore(paths)


def restore(paths: dict[str, Path]) -> None:
    """Put the run back as it was (an exit 0 may write to it) and drop the other outputs: each example starts
    afresh."""
    if snapshot(paths["run"]) != snapshot(paths["pristine"]):
        shutil.rmtree(paths["run"])
        shutil.copytree(paths["pristine"], paths["run"])
    for leftover in ("nn", "img", "idx", "base"):
        shutil.rmtree(paths["run"].parent / leftover, ignore_errors=True)
