import pytest
import torch

from selfsup.backbones import BACKBONES, create_backbone
from selfsup.backbones.contract import Encoder, backbones_with, provides
from selfsup.decoders import DECODER_KINDS, build_decoder
from selfsup.errors import ConfigError, UnknownNameError


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


# -- the contract (selfsup/backbones/contract.py), over every registered backbone -----------------------------------

@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_every_backbone_keeps_the_contract(name: str, channels: int, size: int) -> None:
    model = create_backbone(name, in_channels=channels, image_size=size).eval()
    assert isinstance(model, Encoder) and isinstance(model.out_dim, int)
    x = torch.rand(3, channels, size, size)
    with torch.no_grad():
        features = model(x)
        assert features.shape == (3, model.out_dim)
        if provides(name, "stages"):  # the stages, applied in order, are the encoder
            y = x
            for stage in model.stages():
                y = stage(y)
            assert torch.equal(y, features)
        if provides(name, "linear_layers"):  # fully connected layers with a ReLU after each are the encoder
            layers = model.linear_layers()
            owned = {id(p) for p in model.parameters()}
            assert layers and all(isinstance(layer, torch.nn.Linear) and id(layer.weight) in owned for layer in layers)
            y = x.flatten(1)
            for layer in layers:
                y = torch.relu(layer(y))
            assert torch.allclose(y, features, atol=1e-6)
        if provides(name, "decoder_family"):  # its decoder restores the input, with and without a bottleneck
            for kind in DECODER_KINDS:
                for latent in (16, 0):
                    decoder = build_decoder(model, latent, channels, size, kind)
                    assert decoder(torch.zeros(2, latent or model.out_dim)).shape == (2, channels, size, size)


def test_capabilities_are_declared_where_the_seeds_need_them() -> None:
    # pinned: which encoders train layer-wise, which are fully connected, which have a mirrored decoder
    assert backbones_with("stages") == ["conv6", "mlp", "mlp-deep", "mlp-shallow"]
    assert backbones_with("linear_layers") == ["mlp", "mlp-deep", "mlp-shallow"]
    assert backbones_with("decoder_family") == ["conv3", "conv6", "conv6-bn", "convpool", "mlp", "mlp-deep",
                                                "mlp-shallow", "resnet18"]


def test_a_method_asks_for_a_capability_by_name_and_the_error_lists_who_has_it() -> None:
    from selfsup.config import RunConfig

    with pytest.raises(ConfigError, match=r"layerwise trains stage by stage.*conv6, mlp, mlp-deep, mlp-shallow; got "
                                          r"resnet18"):
        RunConfig().replace({"method": "layerwise", "backbone": "resnet18"})
    with pytest.raises(ConfigError, match="rae copies transposed weight.*got conv6"):
        RunConfig().replace({"method": "rae", "backbone": "conv6"})
    with pytest.raises(ConfigError, match="penalty=weights.*got conv6"):
        RunConfig().replace({"method": "cae", "backbone": "conv6", "params.penalty": "weights"})
