"""Contract tests over the registry: every method passes these with no test code of its own."""

from pathlib import Path

import pytest
import torch

from selfsup.api import build_method
from selfsup.config import RunConfig
from selfsup.data import InMemorySource, make_synthetic
from selfsup.data.neighbors import fingerprint
from selfsup.data.plan import training_data
from selfsup.experiments.neighbors import nearest_neighbors
from selfsup.methods import METHODS, MethodContext
from selfsup.train import Trainer

BACKBONE = "mlp"


def write_neighbors(data, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A neighbour file for ``data`` mined on raw pixels, as `selfsup neighbors` writes it."""
    indices = nearest_neighbors(data.images.flatten(1).float(), k=3)
    torch.save({"indices": indices, "metric": "cosine", "k": 3, "dataset": data.name, "size": len(data),
                "fingerprint": fingerprint(data)}, path)
    return path


def tiny_config(method: str, tmp_path: Path, **overrides: object) -> RunConfig:
    values = {"backbone": BACKBONE, "dataset": "synthetic", "epochs": 1, "train.batch_size": 32,
              "lr": 1e-3, "log_every": 1, **overrides}
    if METHODS.get(method).neighbors_from is not None:  # its neighbours must be mined on the very training set
        data = training_data(RunConfig().replace(values))
        values["params.neighbors"] = str(write_neighbors(data, tmp_path / "neighbors.pt"))
    return RunConfig().replace({"method": method, **values})


def build(method: str, tmp_path: Path) -> tuple:
    data = make_synthetic(128, seed=0)
    config = tiny_config(method, tmp_path)
    if METHODS.get(method).neighbors_from is not None:
        config = config.replace({"params.neighbors": str(write_neighbors(data, tmp_path / "nn128.pt"))})
    torch.manual_seed(0)
    model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))
    model.attach_data(data)
    model.begin_step(99, 100)  # staged methods (layer-wise training): the last, end-to-end stage
    return model, data, config


@pytest.mark.parametrize("name", METHODS.names())
def test_one_step_gives_a_finite_loss_and_gradients_reach_the_backbone(name: str, tmp_path: Path) -> None:
    model, data, _ = build(name, tmp_path)
    source = InMemorySource(data, 32, seed=0, device="cpu")
    output = model(next(iter(source.epoch(0))), torch.Generator().manual_seed(0))
    assert output.loss.ndim == 0 and torch.isfinite(output.loss)
    output.loss.backward()
    gradients = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in gradients)
    assert sum(g.abs().sum().item() for g in gradients) > 0


@pytest.mark.parametrize("name", METHODS.names())
def test_loss_goes_down_on_tiny_data(name: str, tmp_path: Path) -> None:
    model, data, config = build(name, tmp_path)
    config = config.replace({"epochs": 15, "optim.schedule": "constant"})
    source = InMemorySource(data, 32, seed=0, device="cpu")
    trainer = Trainer(model, source, config, torch.device("cpu"), progress=False)
    fixed = next(iter(source.epoch(0)))

    def loss_on_fixed_batch() -> float:
        with torch.no_grad():
            return model(fixed, torch.Generator().manual_seed(0)).loss.item()

    before = loss_on_fixed_batch()
    trainer.fit()
    assert loss_on_fixed_batch() < 0.95 * before


@pytest.mark.parametrize("name", METHODS.names())
def test_save_load_round_trip_gives_the_same_embedding(name: str, tmp_path: Path) -> None:
    import selfsup

    config = tiny_config(name, tmp_path, limit=64)
    result = selfsup.train(config, out=tmp_path / "run", evaluate=False, progress=False)
    images = torch.rand(4, 3, 16, 16)
    result.method.eval()
    device = next(result.method.parameters()).device  # CUDA where present: compare on the device it trained on
    loaded = selfsup.load(tmp_path / "run", device)
    assert torch.allclose(loaded.embed(images), result.method.embed(images))


# params under which a method reads augment.* only sometimes: both sides are checked
AUGMENT_SWITCHES = {"dae": ({"params.noise": "gaussian"}, {"params.noise": "augment"}),
                    "rotnet": ({"params.crop_flip": False}, {"params.crop_flip": True})}


@pytest.mark.parametrize("name", METHODS.names())
def test_augment_settings_change_the_views_exactly_when_the_method_augments(name: str, tmp_path: Path) -> None:
    """`Method.reads_augment` says whether augment.* reaches the step, `Method.augments` whether it can; `selfsup
    tune` must not search a setting the method never reads (RotNet's study searched augment.strength, which it
    ignored before params.crop_flip)."""
    data = make_synthetic(32, seed=0)
    method = METHODS.get(name)
    reads = []
    for switch in AUGMENT_SWITCHES.get(name, ({},)):
        views = []
        for strength in (0.1, 1.0):
            config = tiny_config(name, tmp_path).replace({"augment.strength": strength, **switch})
            if method.neighbors_from is not None:
                config = config.replace({"params.neighbors": str(write_neighbors(data, tmp_path / "nn32.pt"))})
            torch.manual_seed(0)
            model = build_method(config, MethodContext(data.channels, data.image_size, len(data)))
            model.attach_data(data)
            model.begin_step(99, 100)
            batch = next(iter(InMemorySource(data, 32, seed=0, device="cpu").epoch(0)))
            views.append(model.make_views(batch, torch.Generator().manual_seed(0)))
        same = all(torch.equal(a, b) for a, b in zip(views[0], views[1], strict=True))
        reads.append(method.reads_augment(config.params))
        assert same != reads[-1], f"{name} {switch}: reads_augment={reads[-1]} but the views {'do not ' * same}change"
    assert method.augments == any(reads), name
    if name in AUGMENT_SWITCHES:
        assert reads == [False, True], name
    if not method.augments:
        assert not any(key.startswith("augment.") for key in method.search_space), name
