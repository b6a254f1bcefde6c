from pathlib import Path

import pytest

from selfsup.config import RunConfig
from selfsup.errors import ConfigError, UnknownNameError


def test_defaults_build_and_round_trip_through_yaml(tmp_path: Path) -> None:
    config = RunConfig()
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert RunConfig.from_yaml(path) == config


def test_set_accepts_dotted_and_unique_bare_keys() -> None:
    config = RunConfig().replace({"optim.lr": "3e-4", "temperature": "0.2", "crop_scale": "0.3,1.0", "limit": "100"})
    assert config.optim.lr == 3e-4 and config.params.temperature == 0.2
    assert config.augment.crop_scale == (0.3, 1.0) and config.data.limit == 100
    assert RunConfig().replace({"optim.grad_clip": "none"}).optim.grad_clip is None


@pytest.mark.parametrize("overrides,match", [
    ({"lr": "0"}, "optim.lr must be > 0"),
    ({"lr": "-1"}, "optim.lr must be > 0"),
    ({"strength": "1.5"}, r"strength must be in \[0, 1\]"),
    ({"temperature": "0"}, "temperature must be > 0"),
    ({"batch_size": "1"}, "at least 2"),
    ({"epochs": "many"}, "expects an integer"),
    ({"nonsense": "1"}, "unknown config key 'nonsense'; valid keys: method, backbone"),
    ({"extract_batch_size": "x"}, "expects an integer"),
])
def test_bad_values_are_rejected_when_built(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunConfig().replace(overrides)


def test_unknown_method_and_backbone_list_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="valid methods: ae, .*simclr"):
        RunConfig(method="nope")
    with pytest.raises(UnknownNameError, match="conv6"):
        RunConfig(backbone="nope")


def test_unknown_yaml_section_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.1\n  lrr: 2\n")
    with pytest.raises(ConfigError, match="lrr"):
        RunConfig.from_yaml(path)
