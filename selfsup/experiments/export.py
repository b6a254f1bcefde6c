"""The trained encoder out, for use without selfsup (``selfsup export``).

- ``state-dict`` (``torch.save``) and ``safetensors``: the backbone's own state dict, no wrapper prefixes, so
  ``create_backbone(name, in_channels=C, image_size=S).load_state_dict(...)`` loads it; a JSON file beside it
  records the name, channels and size. It gives the backbone's features (the representation evaluation uses
  unless ``params.representation=latent``).
- ``torchscript``: the run's representation (``selfsup.load(run).embed``) as one scripted module taking
  (N, C, H, W) images, uint8 in 0-255 or float in [0, 1] (the scaling is inside).
- ``onnx``: the same graph for onnxruntime and others; its input is float32 (N, C, H, W) in [0, 1], its output
  (N, D) features; the batch size is dynamic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from selfsup.errors import ConfigError
from selfsup.train.rundir import read_run_config

FORMATS = ("state-dict", "safetensors", "torchscript", "onnx")


class _Representation(nn.Module):
    """The run's ``embed`` as a module on float images in [0, 1] (what tracing records)."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method.embed(images).float().flatten(1)


class _Scaled(nn.Module):
    """uint8 images (0-255) or float images in [0, 1] -> the traced representation."""

    def __init__(self, traced: nn.Module) -> None:
        super().__init__()
        self.traced = traced

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return self.traced(images)


def export(run_dir: str | Path, fmt: str, out: str | Path) -> dict[str, Any]:
    """Write the run's encoder to ``out`` in ``fmt``; returns what was written and how to load it."""
    from selfsup.api import load

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    method = load(run_dir, "cpu").float()
    context = method.context
    backbone = method.backbone
    info = {"backbone": read_run_config(Path(run_dir)).backbone, "in_channels": context.in_channels,
            "image_size": context.image_size, "format": fmt, "run": str(run_dir)}
    example = torch.rand(2, context.in_channels, context.image_size, context.image_size)
    if fmt in ("state-dict", "safetensors"):
        state = {key: value.contiguous() for key, value in backbone.state_dict().items()}
        if fmt == "state-dict":
            torch.save(state, out)
        else:
            try:
                from safetensors.torch import save_file
            except ImportError:
                raise ConfigError("--format safetensors needs the safetensors package (pip install safetensors)") from None
            save_file(state, str(out), metadata={key: str(value) for key, value in info.items()})
        info["load"] = (f"create_backbone({info['backbone']!r}, in_channels={context.in_channels}, "
                        f"image_size={context.image_size}).load_state_dict(...)")
        Path(f"{out}.json").write_text(json.dumps(info, indent=2) + "\n")
        return {**info, "files": [str(out), f"{out}.json"]}
    with torch.no_grad():
        traced = torch.jit.trace(_Representation(method).eval(), example, check_trace=False)
    if fmt == "torchscript":
        torch.jit.script(_Scaled(traced)).save(str(out))
        return {**info, "files": [str(out)], "load": "torch.jit.load(path)(images)  # uint8 0-255 or float 0-1"}
    try:
        import onnx  # noqa: F401  (the exporter writes through it)
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package (pip install onnx; onnxruntime to run it)") from None
    # the TorchScript-based exporter: the torch.export one needs onnxscript as well
    torch.onnx.export(traced, (example,), str(out), dynamo=False, input_names=["images"], output_names=["features"],
                      dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}})
    return {**info, "files": [str(out)], "load": "onnxruntime.InferenceSession(path).run(None, {'images': x})"}
