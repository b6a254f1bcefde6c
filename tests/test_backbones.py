import pytest
import torch

from selfsup.backbones import BACKBONES, create_backbone
from selfsup.errors import UnknownNameError


@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32), (3, 20)])
def test_backbone_reports_its_feature_size(name: str, channels: int, size: int) -> None:
    model = create_backbone(name, in_channels=channels, image_size=size)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.rand(2, channels, size, size)).shape == (2, model.out_dim)


def test_conv6_matches_the_thesis_sizes() -> None:
    assert create_backbone("conv6", in_channels=3, image_size=32).out_dim == 8192  # 512 x 4 x 4
    assert create_backbone("conv6", in_channels=1, image_size=28).out_dim == 4608  # 512 x 3 x 3


def test_mlp_widths_are_configurable() -> None:
    assert create_backbone("mlp", in_channels=1, image_size=8, widths=(32, 7)).out_dim == 7


def test_unknown_backbone_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="conv6.*resnet18"):
        create_backbone("vgg", in_channels=3, image_size=32)


def test_too_small_images_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 8 px"):
        create_backbone("conv6", in_channels=1, image_size=4)
