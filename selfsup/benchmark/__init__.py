"""Benchmarks (never timed unit tests): throughput against the model's own cost, the data share of a step,
evaluation time on 60k features, and accuracy under a documented budget beside the baselines.

Every figure is measured in the same process as its reference, and reported as a ratio where possible.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from selfsup.benchmark.accuracy import bench_accuracy, current_evaluation, method_config
from selfsup.benchmark.budgets import BUDGETS, budget_tag, reference_config
from selfsup.benchmark.speed import bench_eval, bench_speed, bench_stream, bench_sweep, speed_table
from selfsup.config import RunConfig
from selfsup.train.device import cpu_model, device_name, resolve_device

__all__ = ["BUDGETS", "bench_accuracy", "bench_eval", "bench_speed", "bench_stream", "bench_sweep", "budget_tag",
           "current_evaluation", "method_config", "reference_config", "render", "run", "write_markdown_block"]


MARK_BEGIN = "<!-- selfsup bench accuracy {budget}: generated, edits inside are overwritten -->"
MARK_END = "<!-- end selfsup bench accuracy {budget} -->"


def write_markdown_block(path: Path, budget_name: str, command: str, markdown: str) -> None:
    """Replace (or append) the generated accuracy table for ``budget_name`` in ``path``; text around it stays."""
    begin, end = MARK_BEGIN.format(budget=budget_name), MARK_END.format(budget=budget_name)
    block = f"{begin}\n\nCommand: `{command}`\n\n{markdown.strip()}\n\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## Accuracy table (`--budget {budget_name}`)\n\n{block}\n"
    path.write_text(text)


def run(what: str, budget_name: str, out: Path, methods: list[str] | None = None, existing_only: bool = False,
        markdown_path: Path | None = None, command: str = "") -> str:
    budget = BUDGETS[budget_name]
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device("auto")
    results: dict[str, Any] = {"machine": device_name(device), "cpu": cpu_model(), "torch": torch.__version__,
                               "budget": budget_name, "date": time.strftime("%Y-%m-%d")}
    if what in ("speed", "all"):
        results["speed"] = bench_speed(budget)
        results["speed"]["table"] = speed_table(budget)
    if what in ("eval", "all"):
        results["eval"] = bench_eval(budget)
    if what in ("sweep", "all"):
        results["sweep"] = bench_sweep(budget)
    if what in ("stream", "all"):
        results["stream"] = bench_stream()
    if what in ("accuracy", "all"):
        results["accuracy"] = bench_accuracy(budget, out, methods, existing_only)
    (out / f"{what}-{budget_name}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (out / f"{what}-{budget_name}.md").write_text(markdown)
    if markdown_path is not None and "accuracy" in results:
        write_markdown_block(markdown_path, budget_name, command, render({**results, "speed": None, "eval": None,
                                                                          "sweep": None}))
    return markdown


def _stale_note(s: dict[str, Any]) -> str:
    """Where this run's probe disagrees with auto's cached choice on a CPU: which file to delete to measure again."""
    verdict, cache = s.get("precision_probe_verdict"), s.get("precision_cache")
    if not cache or verdict in (None, s["precision"]):
        return ""
    return (f"; this run's probe says {verdict}: auto's choice was cached from an earlier measurement, delete "
            f"{cache} to measure again")


def _render_speed(s: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [f"| {RunConfig().method} + Conv6, Fashion-MNIST, batch {s['batch_size']}: one step function "
              "(`run_step`) for both | value |", "|---|---|",
              f"| training throughput (data + augmentation + model) | {s['train_images_per_s']} images/s |",
              f"| the same step on views made beforehand (model only) | {s['model_only_images_per_s']} images/s |",
              f"| epoch time / model-only time (spread over {s.get('repeats', 1)} interleaved blocks) | "
              f"{s['epoch_time_ratio_to_model']}x (+/- {s.get('ratio_spread', 0) / 2:.3f}) |",
              f"| memory format, compiled (auto's choices) | {'channels-last' if s.get('channels_last') else 'NCHW'}, "
              f"{'compiled' if s.get('compiled') else 'eager'} |",
              f"| data + augmentation share of a step | {100 * s['data_share_of_step']:.1f}% |",
              f"| precision chosen by `auto` (probe fp32 / bf16 ms) | {s['precision']} "
              f"({s['precision_probe_ms']['fp32']} / {s['precision_probe_ms']['bf16']}){_stale_note(s)} |", ""]
    if s.get("table"):
        best = max(s["table"], key=lambda row: row["images_per_s"])
        lines += ["| model only: precision | format | compiled | images/s | compile s |", "|---|---|---|---|---|"]
        lines += [f"| {r['precision']} | {r['format']} | {'yes' if r['compiled'] else 'no'} | {r['images_per_s']}"
                  f"{' (best)' if r is best else ''} | {r['compile_seconds'] if r['compiled'] else ''} |"
                  for r in s["table"]]
        lines += ["", f"Training throughput at auto's choices / best model-only configuration: "
                  f"{s['train_images_per_s'] / best['images_per_s']:.3f}x (target >= 1 / 1.1 = 0.909).", ""]
    return lines


def render(results: dict[str, Any]) -> str:
    lines = [f"Machine: {results['machine']}; torch {results['torch']}; budget {results['budget']}; "
             f"{results['date']}", ""]
    if results.get("speed"):
        lines += _render_speed(results["speed"])
    if results.get("eval"):
        e = results["eval"]
        sec = e["seconds"]
        lines += [f"| evaluation on {e['train_features']} train features ({e['feature_dim']}-d) | seconds |",
                  "|---|---|", f"| feature extraction (train + test) | {sec['features']} |",
                  *([f"| extraction fp32 NCHW / {e['extraction']['auto']['mode']} (`eval.precision=auto`) | "
                     f"{e['extraction']['fp32']['seconds']} / {e['extraction']['auto']['seconds']} "
                     f"({e['extraction_speedup']}x) |"] if "extraction" in e else []),
                  f"| linear probe | {sec['linear_probe']} |",
                  f"| subspace projection for kNN / k-means | {sec['projection']} |", f"| kNN | {sec['knn']} |",
                  f"| k-means | {sec['kmeans']} |", f"| probe + kNN + k-means | {e['probe_knn_kmeans_seconds']} |"]
        if "knn_accuracy_exact" in e:
            lines += [f"| kNN accuracy projected / exact (random-init) | {e['knn_accuracy_projected']:.4f} / "
                      f"{e['knn_accuracy_exact']:.4f} (exact kNN took {e['knn_exact_seconds']} s) |"]
        lines.append("")
    if results.get("sweep"):
        w = results["sweep"]
        lines += [f"| sweep of {w['cells']} small cells | seconds |", "|---|---|",
                  f"| cells run by hand (`api.train`) | {w['by_hand_seconds']} |",
                  f"| the same cells through `selfsup sweep` | {w['sweep_seconds']} |",
                  f"| overhead per cell | {w['overhead_per_cell_seconds']} |",
                  f"| rerun with every cell finished (all skipped) | {w['rerun_all_finished_seconds']} |", ""]
    if results.get("stream"):
        st = results["stream"]
        lines += [f"| image folder, {st['images']} PNGs, batch {st['batch_size']} | data path images/s | "
                  "SimCLR + Conv6 step images/s |", "|---|---|---|"]
        lines += [f"| {name} | {value['data_images_per_s']} | {value['train_images_per_s']} |"
                  for name, value in st.items() if isinstance(value, dict)]
        lines.append("")
    if results.get("accuracy"):
        lines += ["| representation | backbone | linear probe | kNN | k-means NMI | k-means acc. | test rec. MSE "
                  "| images seen | s / epoch | scored on |", "|---|---|---|---|---|---|---|---|---|---|"]
        older = {name: r["trained_with_another_config"] for name, r in results["accuracy"].items()
                 if r.get("trained_with_another_config")}
        for name, r in results["accuracy"].items():
            mse = f"{r['reconstruction_mse']:.4f}" if "reconstruction_mse" in r else ""
            seen = f"{r['images_seen']:,}" if r.get("images_seen") else ""
            lines.append(f"| {name}{' (older config)' if name in older else ''} | {r['backbone'] or ''} | "
                         f"{r['linear_probe']:.4f} | {r['knn']:.4f} | "
                         f"{r['kmeans_nmi']:.4f} | {r['kmeans_accuracy']:.4f} | {mse} | {seen} | "
                         f"{r.get('seconds_per_epoch', '')} | {r.get('split', 'test')} |")
        lines.append("")
        for name, differences in older.items():
            lines += [f"Older config: the `{name}` run was trained before its recipe changed; it differs from what "
                      f"the benchmark trains today in {'; '.join(differences)}. Move the run away to train the "
                      "recipe.", ""]
    return "\n".join(lines)
