import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file as in MNIST: magic (0, 0, type, ndim), big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


@pytest.fixture
def mnist_like(tmp_path: Path) -> Path:
    """A tiny MNIST-format folder: 64 train and 32 test 28x28 images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist-like"
    folder.mkdir()
    for prefix, n in (("train", 64), ("t10k", 32)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), compress=True)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's cache and data variables out of the tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("SELFSUP_DATA", raising=False)


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


def invoke(*args: str):  # type: ignore[no-untyped-def]
    """Run the selfsup CLI in-process; exceptions propagate so a failure shows its traceback."""
    from click.testing import CliRunner

    from selfsup.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


QUICK = ["--dataset", "synthetic", "--backbone", "mlp", "--epochs", "2", "--batch-size", "64", "--quiet",
         "--precision", "fp32", "--device", "cpu", "--set", "eval.probe_epochs=2"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished SimCLR run (two epochs, so checkpoints/previous.pt exists) shared by the trust and fuzz tests;
    a test that changes it works on a copy."""
    from click.testing import CliRunner

    from selfsup.cli import cli

    base = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(base / "cache"))
        result = CliRunner().invoke(cli, ["train", "simclr", *QUICK, "--out", str(base / "run")])
    assert result.exit_code == 0, result.output
    return base / "run"
