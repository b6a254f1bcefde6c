"""What an encoder provides: the backbone contract. ``tests/test_backbones.py`` checks it over every registered
backbone, so a new one learns what it must provide from there, not from a method's failure.

Required of every backbone, an ``nn.Module`` built by its registered factory as ``factory(in_channels=C,
image_size=S)``:

- ``forward(x)``: images (B, C, S, S), float in [0, 1], to features (B, ``out_dim``);
- ``out_dim: int``, the feature size (the representation evaluation measures).

Optional capabilities, declared on the class so a method can ask by the backbone's name before anything is
built (``provides``), and asked for by capability, never by name:

- ``stages() -> list[nn.Module]``: the encoder as a chain of stages, outermost first; applying them in order is
  ``forward``. Layer-wise training (``layerwise``, ``rae``) pairs each with a decoder stage.
- ``linear_layers() -> list[nn.Linear]``: the encoder is these fully connected layers, with an element-wise
  activation after each. The contractive weight penalty and ``rae``'s transposed-weight copy need it.
- ``decoder_family: ClassVar[str]``: the decoder in ``decoders.DECODERS`` that mirrors the encoder (the
  reconstruction methods). That decoder may read hints the encoder sets, each listed in its docstring:
  ``feature_shape`` (C, h, w), the last map before flattening; ``widths`` and ``input_dim`` (MLPs);
  ``channels``, ``sides`` and ``flat`` (convpool).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from selfsup.errors import ConfigError
from selfsup.registry import BACKBONES

# capability -> how a message names it
CAPABILITIES = {
    "stages": "a chain of stages (stages())",
    "linear_layers": "fully connected layers only (linear_layers())",
    "decoder_family": "a mirrored decoder (decoder_family)",
}


@runtime_checkable
class Encoder(Protocol):
    """The required part of the contract."""

    out_dim: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def backbone_class(name: str) -> type:
    """The class a registered backbone name builds (a ``functools.partial`` of a class is unwrapped)."""
    factory = BACKBONES.get(name)
    return getattr(factory, "func", factory)


def provides(name: str, capability: str) -> bool:
    """Whether the backbone registered as ``name`` declares ``capability`` (one of CAPABILITIES)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown backbone capability {capability!r}; one of {', '.join(CAPABILITIES)}")
    return getattr(backbone_class(name), capability, None) is not None


def backbones_with(capability: str) -> list[str]:
    """The registered backbone names that provide ``capability``."""
    return [name for name in BACKBONES.names() if provides(name, capability)]


def require(name: str, capability: str, who: str) -> None:
    """A ConfigError when backbone ``name`` lacks ``capability``: ``who`` needs it; the message lists the
    backbones that have it."""
    if not provides(name, capability):
        raise ConfigError(f"{who} needs a backbone with {CAPABILITIES[capability]}: "
                          f"{', '.join(backbones_with(capability))}; got {name}")
