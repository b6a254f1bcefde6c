import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_fashion

import selfsup
from selfsup.config import RunConfig
from selfsup.errors import RunDirectoryError
from selfsup.methods.simclr import SimCLR
from selfsup.ops.schedules import cosine_momentum, update_momentum, warmup_cosine
from selfsup.train import DivergenceError, TrainingInterrupted


def config(**overrides: object) -> RunConfig:
    values = {"backbone": "mlp", "dataset": "synthetic", "limit": 256, "epochs": 2, "train.batch_size": 64,
              "checkpoint_every": 3, "log_every": 1, "eval.probe_epochs": 2, **overrides}
    return RunConfig().replace(values)


def weights_of_an_eager_model() -> dict:
    from selfsup.api import build_method
    from selfsup.methods import MethodContext

    return build_method(config(), MethodContext(3, 16, 256)).state_dict()


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]


@pytest.mark.parametrize("compiled", ["off", "on"])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(compiled: str, tmp_path: Path, monkeypatch) -> None:
    """Also with the encoder compiled (train.compile=on): the checkpoint's keys are the eager model's (no
    ``_orig_mod.``), and the resumed run, compiled again, ends bit for bit where the uninterrupted one does."""
    if compiled == "on":
        from selfsup.train.device import compiler_available

        if not compiler_available(torch.device("cpu")):
            pytest.skip("torch.compile needs a C++ compiler on the CPU")
    overrides = {"train.compile": compiled}
    selfsup.train(config(**overrides), out=tmp_path / "straight", evaluate=False, progress=False)

    original = SimCLR.after_optimizer_step

    def send_sigterm_at_step_5(self, step, total_steps):  # type: ignore[no-untyped-def]
        original(self, step, total_steps)
        if step == 4:  # the fifth optimizer step, mid-epoch
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(SimCLR, "after_optimizer_step", send_sigterm_at_step_5)
    with pytest.raises(TrainingInterrupted, match="resume"):
        selfsup.train(config(**overrides), out=tmp_path / "resumed", evaluate=False, progress=False)
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=False)["step"] == 5
    monkeypatch.setattr(SimCLR, "after_optimizer_step", original)
    selfsup.train(config(**overrides), out=tmp_path / "resumed", resume=True, evaluate=False, progress=False)

    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys() == weights_of_an_eager_model().keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    steps = [line for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(steps) == 8  # no duplicated lines after the resume


def test_resuming_a_finished_run_reports_its_last_loss(tmp_path: Path) -> None:
    first = selfsup.train(config(), out=tmp_path / "run", evaluate=False, progress=False)
    again = selfsup.train(config(), out=tmp_path / "run", resume=True, evaluate=False, progress=False)
    assert math.isfinite(first.train.final_loss)
    assert again.train.final_loss == first.train.final_loss and again.train.steps == first.train.steps


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    original = SimCLR.forward

    def poisoned(self, batch, generator, views=None):  # type: ignore[no-untyped-def]
        output = original(self, batch, generator, views)
        if self.poison_after is not None and self.steps_seen >= self.poison_after:
            output.loss = output.loss * float("nan")
        self.steps_seen += 1
        return output

    monkeypatch.setattr(SimCLR, "forward", poisoned)
    monkeypatch.setattr(SimCLR, "steps_seen", 0, raising=False)
    monkeypatch.setattr(SimCLR, "poison_after", 4, raising=False)
    with pytest.raises(DivergenceError, match="loss became nan at step 4.*--lr"):
        selfsup.train(config(), out=tmp_path / "run", evaluate=False, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == 4  # the epoch-end checkpoint after step 4 (checkpoint_every=3 wrote step 3 first)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_run_directory_with_another_config_is_refused_untouched(tmp_path: Path) -> None:
    selfsup.train(config(epochs=1), out=tmp_path / "run", evaluate=False, progress=False)
    before = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(RunDirectoryError, match="different config.*train.epochs"):
        selfsup.train(config(epochs=2), out=tmp_path / "run", evaluate=False, progress=False)
    with pytest.raises(RunDirectoryError, match="--resume"):
        selfsup.train(config(epochs=1), out=tmp_path / "run", evaluate=False, progress=False)
    assert (tmp_path / "run" / "config.yaml").read_text() == before


def test_run_directory_contents(tmp_path: Path) -> None:
    result = selfsup.train(config(), out=tmp_path / "run", progress=False)
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pt", "eval.json", "plots/loss.png"):
        assert (tmp_path / "run" / name).exists(), name
    assert (tmp_path / "run" / "plots" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    for key in ("linear_probe", "knn", "kmeans"):
        assert key in result.eval


def test_warmup_cosine_schedule_formula() -> None:
    schedule = warmup_cosine(1.0, total_steps=10, warmup_steps=2, final_value=0.1)
    assert schedule.shape == (10,)
    assert schedule[0] == pytest.approx(0.5) and schedule[1] == pytest.approx(1.0)
    for k in range(8):
        expected = 0.1 + 0.45 * (1 + math.cos(math.pi * k / 8))
        assert schedule[2 + k] == pytest.approx(expected)
    assert np.all(warmup_cosine(0.3, 5, constant=True) == 0.3)


def test_cosine_momentum_schedule_rises_from_base_to_one() -> None:
    schedule = cosine_momentum(0.99, 100)
    assert schedule[0] == pytest.approx(0.99)
    assert schedule[50] == pytest.approx(1 - 0.01 * (math.cos(math.pi * 0.5) + 1) / 2)
    assert np.all(np.diff(schedule) >= 0)


def test_ema_update_formula() -> None:
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    update_momentum(online, target, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)
    with pytest.raises(ValueError, match="momentum"):
        update_momentum(online, target, 1.5)


def test_channels_last_trains_the_same_model(tmp_path: Path) -> None:
    from selfsup.train.device import resolve_channels_last

    assert resolve_channels_last("on", torch.device("cpu")) and not resolve_channels_last("off", torch.device("cpu"))
    cache = tmp_path / "choices.json"
    choice = resolve_channels_last("auto", torch.device("cpu"), cache)
    assert "channels_last|" in cache.read_text() and resolve_channels_last("auto", torch.device("cpu"), cache) == choice
    runs = {}
    for setting in ("off", "on"):
        cfg = config(backbone="conv3", epochs=1, **{"train.channels_last": setting})
        runs[setting] = selfsup.train(cfg, out=tmp_path / setting, evaluate=False, progress=False)
    assert runs["on"].method.backbone.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert runs["on"].train.final_loss == pytest.approx(runs["off"].train.final_loss, rel=1e-4)


def test_the_precision_probe_times_a_copy_and_leaves_the_run_untouched() -> None:
    """On a GPU, ``auto`` precision times the run's own step; that must not move the weights, the buffers
    (BatchNorm statistics) or any random stream, so a run is the same whether the choice was cached or not."""
    from selfsup.api import build_method, training_data
    from selfsup.data import InMemorySource
    from selfsup.methods import MethodContext
    from selfsup.train.device import method_step_timer

    cfg = config(method="byol", backbone="conv3", limit=64)
    data = training_data(cfg)
    method = build_method(cfg, MethodContext(data.channels, data.image_size, len(data)))
    batch = next(iter(InMemorySource(data, 32, 0, "cpu").epoch(0)))
    before = {k: v.clone() for k, v in method.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = method_step_timer(method, batch, torch.device("cpu"), repeats=1)(False)
    assert 0 < seconds < 60
    assert torch.equal(torch.get_rng_state(), rng)
    after = method.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in method.parameters())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@needs_cuda
def test_on_cuda_auto_precision_is_measured_per_workload_and_a_run_resumes(tmp_path: Path) -> None:
    import json

    from selfsup.data.cache import decision_cache

    cfg = config(backbone="conv3", **{"train.device": "cuda", "train.precision": "auto"})
    first = selfsup.train(cfg, out=tmp_path / "run", progress=False)
    cache = json.loads((decision_cache()).read_text())
    workload = [key for key in cache if "simclr|conv3" in key]
    assert workload and cache[workload[0]] in ("fp32", "bf16")
    assert first.eval["training"]["precision"] == cache[workload[0]]
    again = selfsup.train(cfg, out=tmp_path / "run", resume=True, progress=False)  # reads back the CUDA checkpoint
    assert again.train.final_loss == first.train.final_loss


@needs_fashion
def test_the_speed_benchmark_times_the_trainers_own_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """One step function: the trainer calls it, and the benchmark's full and model-only steps both go through it."""
    from importlib import import_module

    from selfsup.benchmark import bench_speed

    # (import_module: the package's `selfsup.train` attribute is the train() function)
    step_module, trainer_module = import_module("selfsup.train.step"), import_module("selfsup.train.trainer")

    assert trainer_module.run_step is step_module.run_step
    calls = {"views made beforehand": 0, "views made in the step": 0}
    original = step_module.run_step

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        views = args[9] if len(args) > 9 else kwargs.get("views")
        calls["views made in the step" if views is None else "views made beforehand"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(step_module, "run_step", spy)
    result = bench_speed({"limit": 600, "epochs": 1, "speed_steps": 1}, repeats=2)
    assert calls == {"views made beforehand": 3, "views made in the step": 3}  # a warm-up and 2 timed of each
    assert result["step_function"] == "selfsup.train.step.run_step" and len(result["ratio_per_repeat"]) == 2
    assert result["train_images_per_s"] > 0 and result["model_only_images_per_s"] > 0


def test_the_speed_report_names_the_cache_when_autos_cached_precision_disagrees_with_its_probe() -> None:
    """auto's CPU choice is measured once and cached; a speed report whose own probe says otherwise says which file
    to delete (a choice cached while the machine was loaded once kept fp32 where bf16 measured 2x faster)."""
    from selfsup.benchmark import _render_speed
    from selfsup.train.device import faster_precision

    assert faster_precision(40.3, 20.1) == "bf16" and faster_precision(40.3, 34.0) == "fp32"  # 1.19x: not enough
    assert faster_precision(10.0, 8.3) == "bf16" and faster_precision(10.0, 8.4) == "fp32"
    speed = {"batch_size": 128, "train_images_per_s": 1.0, "model_only_images_per_s": 1.0,
             "epoch_time_ratio_to_model": 1.0, "data_share_of_step": 0.0, "precision": "fp32",
             "precision_probe_ms": {"fp32": 40.3, "bf16": 20.1}, "precision_probe_verdict": "bf16",
             "precision_cache": "/home/u/.cache/selfsup/precision.json"}
    line = next(row for row in _render_speed(speed) if row.startswith("| precision chosen"))
    assert line == ("| precision chosen by `auto` (probe fp32 / bf16 ms) | fp32 (40.3 / 20.1); this run's probe says "
                    "bf16: auto's choice was cached from an earlier measurement, delete "
                    "/home/u/.cache/selfsup/precision.json to measure again |")
    for agreeing in ({**speed, "precision": "bf16"}, {**speed, "precision_cache": None}):  # agrees; a GPU
        line = next(row for row in _render_speed(agreeing) if row.startswith("| precision chosen"))
        assert "cached" not in line


def test_compile_auto_compiles_only_where_the_measured_gain_repays_the_compile(tmp_path: Path) -> None:
    from selfsup.train.device import MIN_COMPILE_SECONDS, resolve_compile

    cpu, cache = torch.device("cpu"), tmp_path / "precision.json"
    calls = []

    def measure() -> tuple[float, float]:
        calls.append(1)
        return 1.3, 10.0  # 1.3x faster per step, 10 s to compile

    assert resolve_compile("on", cpu, 1.0, measure, cache, "w") and not resolve_compile("off", cpu, 1e6, measure, cache, "w")
    assert not resolve_compile("auto", cpu, MIN_COMPILE_SECONDS, measure, cache, "w") and calls == []  # too short
    if not resolve_compile.__globals__["compiler_available"](cpu):
        pytest.skip("no C++ compiler: auto never compiles on this CPU")
    assert resolve_compile("auto", cpu, 100.0, measure, cache, "w")  # saves 23 s > 10 s
    assert not resolve_compile("auto", cpu, 30.0, measure, cache, "w")  # saves 6.9 s < 10 s
    assert calls == [1]  # measured once per workload, then cached


def test_a_warm_up_has_a_floor_in_steps() -> None:
    """0.2 epoch of 12 steps is 2 steps; the floor keeps 50 (at most a tenth of the run), and a large dataset's
    0.2 epoch is unchanged."""
    from selfsup.config import OptimConfig
    from selfsup.ops.schedules import warmup_steps

    tuned = OptimConfig(optimizer="sgd", lr=0.06, warmup_epochs=0.2)
    assert warmup_steps(tuned, 12, 12 * 150) == 50  # 1,500 images, batch 128, 150 epochs
    assert warmup_steps(tuned, 12, 12 * 30) == 36  # a tenth of 360 steps
    assert warmup_steps(tuned, 429, 429 * 4) == 86  # Fashion-MNIST's 55,000 images: the committed recipe's 86
    assert warmup_steps(OptimConfig(warmup_epochs=0.0), 12, 1800) == 0
    assert warmup_steps(OptimConfig(warmup_epochs=0.2, warmup_min_steps=0), 12, 1800) == 2


class ScriptedMonitor:
    """OnlineMonitor.measure replaced by a fixed sequence of validation kNN values; keeps the weights it saw."""

    def __init__(self, values: list[float]) -> None:
        self.values, self.weights = values, []

    def measure(self):  # type: ignore[no-untyped-def]
        def measure(monitor, method):  # type: ignore[no-untyped-def]
            self.weights.append({key: value.detach().clone() for key, value in method.state_dict().items()})
            return {"monitor_knn": self.values[len(self.weights) - 1]}

        return measure


def test_keep_best_evaluates_the_best_measurement_and_patience_stops_the_run(tmp_path: Path, monkeypatch) -> None:
    from selfsup.eval.monitor import OnlineMonitor

    # measurements before the first step and after epochs 1..6: the best is epoch 2's; epochs 3 and 4 do not beat
    # it, so patience 2 stops the run after epoch 4 and epoch 5's 0.9 is never reached
    scripted = ScriptedMonitor([0.3, 0.5, 0.7, 0.6, 0.7, 0.9, 0.95])
    monkeypatch.setattr(OnlineMonitor, "measure", scripted.measure())
    run = tmp_path / "run"
    overrides = {"epochs": 6, "train.keep_best": True, "train.patience": 2, "monitor.bank": 100,
                 "monitor.queries": 50}
    result = selfsup.train(config(**overrides), out=run, progress=False)
    per_epoch = 256 // 64
    assert len(scripted.weights) == 5  # epochs 0..4
    assert result.train.stopped_early and result.train.steps == 4 * per_epoch
    assert result.train.kept == {"step": 2 * per_epoch, "epoch": 2, "monitor_knn": 0.7}
    best = scripted.weights[2]
    last = weights(run)  # checkpoints/last.pt: the state after epoch 4, where a resume would continue
    assert any(not torch.equal(best[key], last[key]) for key in best)
    for method in (result.method, selfsup.load(run)):  # the evaluated weights, and what load gives
        for key, value in method.state_dict().items():
            assert torch.equal(value.cpu(), best[key]), key
    assert result.eval["training"]["kept_best"] == {"step": 8, "epoch": 2, "monitor_knn": 0.7}
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "event" in line]
    assert [e["event"] for e in events] == ["stopped_early"] and events[0]["step"] == 16

    # resumed, the run is already out of patience: no step is trained, and the kept weights come from best.pt
    again = selfsup.train(config(**overrides), out=run, resume=True, evaluate=False, progress=False)
    assert again.train.steps == 16 and again.train.kept == result.train.kept and len(scripted.weights) == 5
    for key, value in again.method.state_dict().items():
        assert torch.equal(value.cpu(), best[key]), key


def test_keep_best_without_a_monitor_says_so_and_evaluates_the_last_weights(tmp_path: Path, caplog) -> None:
    """A recipe's keep_best (simsiam's) meets runs without a monitor (unlabelled images, streaming): the run goes on
    with its last weights and says so; train.patience alone is refused, since it would do nothing."""
    import logging

    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match="train.keep_best"):
        config(**{"train.patience": 3})
    with caplog.at_level(logging.WARNING, logger="selfsup.run"):
        result = selfsup.train(config(**{"train.keep_best": True, "train.patience": 1, "monitor.enabled": False}),
                               out=tmp_path / "run", evaluate=False, progress=False)
    assert "no monitor (monitor.enabled is false): its last weights are evaluated" in caplog.text
    assert result.train.kept is None and not result.train.stopped_early and result.train.steps == 8
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    for key, value in selfsup.load(tmp_path / "run").state_dict().items():
        assert torch.equal(value, weights(tmp_path / "run")[key]), key


def test_kept_measurement_follows_the_trainers_rule() -> None:
    from selfsup.train.trainer import kept_measurement

    assert kept_measurement([0.80, 0.84, 0.85, 0.86], 10) == (3, None)  # rising to the end: the last is kept
    assert kept_measurement([0.80, 0.86, 0.85, 0.86], 10) == (1, None)  # a tie keeps the earlier weights
    assert kept_measurement([0.80, 0.79, 0.78], 0) == (0, None)  # never beaten: the untrained encoder
    # patience 2: two measurements without a new best stop the run after the second (index 3), before index 4
    assert kept_measurement([0.5, 0.7, 0.6, 0.65, 0.9], 2) == (1, 3)
    assert kept_measurement([0.5, 0.7, 0.6, 0.65], 2) == (1, None)  # the last measurement: nothing left to stop


def test_a_run_whose_last_measurement_was_its_best_is_the_keep_best_recipes_run(tmp_path: Path) -> None:
    """simsiam's recipe took train.keep_best after its runs: a run whose monitor rose to its last measurement kept
    those weights anyway, so the accuracy table does not flag it; one that peaked earlier is flagged."""
    from selfsup.benchmark.accuracy import method_config, recipe_differences

    budget = {"limit": None, "epochs": 4}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(method_config("simsiam", budget, {"train.keep_best": False,
                                                                       "train.patience": 0}).to_yaml())
    for values, expected in (([0.83, 0.84, 0.845, 0.846, 0.85], []),
                             ([0.83, 0.84, 0.851, 0.846, 0.85],
                              ["train.keep_best: False -> True", "train.patience: 0 -> 10"])):
        (run / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "monitor_knn": v}) + "\n"
                                                   for i, v in enumerate(values)))
        assert recipe_differences(run, "simsiam", budget) == expected
