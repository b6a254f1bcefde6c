"""Device and precision choice. ``auto`` precision is decided by measuring, never assumed:
bf16 autocast doubled training speed on one CPU of our machines and was ten times slower on another."""

from __future__ import annotations

import copy
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from selfsup.errors import DeviceError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}); "
                          "use --device cpu or auto")
    return torch.device(name)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"


def probe_step_time(device: torch.device, bf16: bool, repeats: int = 3, channels_last: bool = False) -> float:
    """Seconds for a small conv net's forward + backward, the shape of our training steps."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 64),
    ).to(device)
    x = torch.rand(64, 3, 24, 24, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return _best_step_time(lambda: model(x).float().square().mean(), device, bf16, repeats)


def _best_step_time(loss_fn: Callable[[], torch.Tensor], device: torch.device, bf16: bool, repeats: int,
                    backward: bool = True) -> float:
    """Best of ``repeats`` timed passes of ``loss_fn`` (after one warm-up), synchronised: forward + backward, or
    (``backward=False``) the forward pass alone, without autograd."""
    best = float("inf")
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.set_grad_enabled(backward), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn().float()
        if backward:
            loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def _cached(cache: Path | None) -> dict[str, str]:
    """The measurements remembered in the JSON file ``cache`` (none when it is missing or unreadable)."""
    if cache is None or not cache.exists():
        return {}
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}


def _cached_choice(cache: Path | None, key: str, measure) -> str:  # type: ignore[no-untyped-def]
    """``measure()`` once per key, remembered in the JSON file ``cache``."""
    known = _cached(cache)
    if key in known:
        return known[key]
    choice = measure()
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({**known, key: choice}, indent=1))
        except OSError:
            pass
    return choice


def resolve_channels_last(setting: str, device: torch.device, cache: Path | None = None, bf16: bool = False) -> bool:
    """Whether to train in the channels-last memory format: ``on``, ``off``, or ``auto``, which keeps it only
    where a probe conv step at the run's precision (``bf16``) measured at least 1.1x faster with it on this
    device (once per device and precision, cached)."""
    if setting != "auto":
        return setting == "on"
    key = (f"channels_last|{device_name(device)}|{torch.__version__}|{torch.get_num_threads()}"
           f"|{'bf16' if bf16 else 'fp32'}")

    def measure() -> str:
        contiguous = probe_step_time(device, bf16=bf16)
        last = probe_step_time(device, bf16=bf16, channels_last=True)
        choice = "on" if last * 1.1 < contiguous else "off"
        log.info("channels-last auto: NCHW %.1f ms, NHWC %.1f ms per probe step -> %s", contiguous * 1e3,
                 last * 1e3, choice)
        return choice

    return _cached_choice(cache, key, measure) == "on"


@dataclass(frozen=True)
class InferenceMode:
    """How a frozen encoder runs (feature extraction, the monitor, baselines, mining): bf16 autocast or not, the
    channels-last memory format or not. Features come back in fp32 either way."""

    bf16: bool = False
    channels_last: bool = False

    def __str__(self) -> str:
        return f"{'bf16' if self.bf16 else 'fp32'}{' channels-last' if self.channels_last else ''}"

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` in this mode's memory format (in place, as ``Module.to`` is)."""
        return module.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)


INFERENCE_MODES = [InferenceMode(bf16, last) for bf16 in (False, True) for last in (False, True)]


def resolve_inference(setting: str, device: torch.device, module: nn.Module, input_shape: tuple[int, ...],
                      cache: Path | None = None, train_precision: str = "fp32", batch: int = 256) -> InferenceMode:
    """``fp32``: fp32 and NCHW. ``train``: the run's training precision, NCHW. ``auto``: the fastest of fp32 / bf16
    x NCHW / channels-last for the forward pass of ``module``'s encoder (its ``backbone``) on ``batch`` images of
    ``input_shape``, measured once per device, model and shape (cached); a mode must beat fp32 NCHW by 5% to be
    chosen, so ``auto`` is never slower than fp32."""
    if setting == "fp32" or not any(True for _ in module.parameters()):
        return InferenceMode()
    if setting == "train":
        return InferenceMode(bf16=train_precision == "bf16")
    encoder = getattr(module, "backbone", module)  # a method's cost is its encoder's: time that (a copy of it)
    size = sum(p.numel() for p in encoder.parameters())  # the class and its size tell the encoders apart
    key = (f"inference|{device_name(device)}|{torch.__version__}|{torch.get_num_threads()}|"
           f"{type(encoder).__name__}:{size}|{'x'.join(map(str, input_shape))}")

    def measure() -> str:
        probe = copy.deepcopy(encoder).eval()
        x = torch.rand(batch, *input_shape, device=device)
        times = {}
        for mode in INFERENCE_MODES:
            mode.prepare(probe)
            images = x.contiguous(memory_format=torch.channels_last) if mode.channels_last else x.contiguous()
            times[str(mode)] = _best_step_time(lambda: probe(images), device, mode.bf16, 3, backward=False)
        best = min(times, key=times.__getitem__)
        choice = best if times[best] * 1.05 < times[str(InferenceMode())] else str(InferenceMode())
        log.info("inference auto on %s: %s ms per %d images -> %s", device_name(device),
                 {k: round(v * 1e3, 1) for k, v in times.items()}, batch, choice)
        return choice

    chosen = _cached_choice(cache, key, measure)
    return next(mode for mode in INFERENCE_MODES if str(mode) == chosen)


MAX_COMPILE_GAIN = 2.0  # no measurement unless even this speed-up could repay the quickest compile
MIN_COMPILE_SECONDS = 10.0


def compiler_available(device: torch.device) -> bool:
    """torch.compile's CPU backend needs a C++ compiler; without one, compiling fails at the first step."""
    import shutil

    return device.type == "cuda" or any(shutil.which(name) for name in ("g++", "c++", "clang++"))


def resolve_compile(setting: str, device: torch.device, expected_seconds: float,
                    measure: Callable[[], tuple[float, float]], cache: Path | None, workload: str) -> bool:
    """Whether to ``torch.compile`` the encoder: ``on``, ``off``, or ``auto``: only where ``measure()`` (eager /
    compiled step-time ratio, compile seconds; run once per device and workload, cached) says that the time saved
    over a run of ``expected_seconds`` (eager) exceeds the compile time. Runs too short for any plausible gain to
    repay a compile are not measured at all."""
    if setting != "auto":
        return setting == "on"
    if not compiler_available(device):
        return False
    key = f"compile|{device_name(device)}|{torch.__version__}|{torch.get_num_threads()}|{workload}"
    if key not in _cached(cache) and expected_seconds * (1 - 1 / MAX_COMPILE_GAIN) < MIN_COMPILE_SECONDS:
        return False

    def measured() -> str:
        ratio, compile_seconds = measure()
        log.info("compile auto: %.2fx faster per step, %.0f s to compile (%s)", ratio, compile_seconds, workload)
        return f"{ratio:.4f}|{compile_seconds:.1f}"

    ratio, compile_seconds = map(float, _cached_choice(cache, key, measured).split("|"))
    saving = expected_seconds * (1 - 1 / ratio)
    log.info("compile auto: saves %.0f s of %.0f s against %.0f s to compile -> %s", saving, expected_seconds,
             compile_seconds, "on" if saving > compile_seconds else "off")
    return saving > compile_seconds


StepTimer = Callable[[bool], float]  # bf16 on/off -> seconds of one training step


def faster_precision(fp32_time: float, bf16_time: float) -> str:
    """``auto``'s rule: bf16 only where its step took under 1 / 1.2 of fp32's."""
    return "bf16" if bf16_time * 1.2 < fp32_time else "fp32"


def resolve_precision(precision: str, device: torch.device, cache: Path | None = None,
                      step_time: StepTimer | None = None, workload: str = "") -> str:
    """``fp32`` or ``bf16``; ``auto`` keeps bf16 only where it measured at least 1.2x faster on this device.

    On a CPU the answer is the hardware's (native bf16 or not) and a small conv probe measures it. On a GPU it
    depends on the model as much as on the card (a small net is launch-bound and gains nothing; on an H200 the
    Conv6 step measured the same in both), so ``step_time`` times the run's own step there, once per
    ``workload`` (method, encoder, image and batch size); without it the probe stands in.
    """
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"{device_name(device)} does not support bf16; use --precision fp32")
        return precision
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp32"

    def probe(bf16: bool) -> float:
        return probe_step_time(device, bf16=bf16)

    # a CPU: the probe answers, once per model and instruction set (one model name can cover CPUs with and
    # without native bf16)
    timer, key = probe, f"{device_name(device)}|{torch.__version__}|{torch.get_num_threads()}"
    if device.type == "cuda":
        timer = step_time or probe
        key = f"{device_name(device)}|{torch.__version__}|{workload if step_time else 'probe'}"

    def measure() -> str:
        fp32_time, bf16_time = timer(False), timer(True)
        choice = faster_precision(fp32_time, bf16_time)
        log.info("precision auto: fp32 %.1f ms, bf16 %.1f ms per step on %s -> %s",
                 fp32_time * 1e3, bf16_time * 1e3, device_name(device), choice)
        return choice

    return _cached_choice(cache, key, measure)


def compile_gain(method: nn.Module, batch: Any, device: torch.device, bf16: bool, channels_last: bool,
                 repeats: int = 3, shared: tuple[Any, ...] = ()) -> Callable[[], tuple[float, float]]:
    """A measurement for ``resolve_compile``: a copy of ``method`` steps eagerly, then with its encoder compiled;
    returns (eager / compiled step time, compile seconds), leaving the method and every random stream as they were."""

    def measure() -> tuple[float, float]:
        probe = copy.deepcopy(method, memo={id(obj): obj for obj in shared}).train()
        if channels_last:
            probe = probe.to(memory_format=torch.channels_last)
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            step = lambda: probe(batch, generator).loss  # noqa: E731
            eager = _best_step_time(step, device, bf16, repeats)
            probe.backbone.compile()
            tic = time.perf_counter()
            _best_step_time(step, device, bf16, 0)  # the first call compiles
            first = time.perf_counter() - tic
            compiled = _best_step_time(step, device, bf16, repeats)
        return eager / compiled, max(0.0, first - compiled)

    return measure


def method_step_timer(method: nn.Module, batch: Any, device: torch.device, repeats: int = 3,
                      shared: tuple[Any, ...] = ()) -> StepTimer:
    """Times forward + backward of a copy of ``method`` on ``batch`` (best of ``repeats`` after a warm-up),
    leaving the method, its buffers and every random stream as they were. ``shared`` objects (a dataset the
    method holds) are not copied."""

    def step_time(bf16: bool) -> float:
        probe = copy.deepcopy(method, memo={id(obj): obj for obj in shared})
        probe.train()
        generator = torch.Generator(device=device).manual_seed(0)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return _best_step_time(lambda: probe(batch, generator).loss,  # type: ignore[operator]
                                   device, bf16, repeats)

    return step_time
