"""Fuzzed, not listed: generated option and --set values, and generated corruptions of every file kind a user
hands selfsup, each ending in exit 0, 1 or 2 without a traceback (exit 2: the run directory unchanged).

A bounded number of examples here; bench/fuzz.py runs the long campaign and records what it tried and found.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_cases import (
    TARGETS,
    corrupted_run,
    corruptions,
    eval_args,
    json_corruptions,
    make_inputs,
    restore,
    run,
    train_args,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, trained: Path) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("fuzz") / "inputs", trained)


@FUZZ
@given(args=train_args())
def test_generated_options_and_set_values_never_end_in_a_traceback(args: list[str], tmp_path: Path) -> None:
    outcome = run([*args, "--out", str(tmp_path / "run")], seconds=20)
    assert outcome.problem is None, f"{args}: {outcome.problem}\n{outcome.output}"


@FUZZ
@given(data=st.data())
def test_generated_evaluation_settings_never_end_in_a_traceback(data: st.DataObject, inputs: dict[str, Path]) -> None:
    args = data.draw(eval_args(inputs["run"]))
    outcome = run(args, inputs["run"], seconds=30)
    assert outcome.problem is None, f"{args}: {outcome.problem}\n{outcome.output}"
    restore(inputs)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_generated_corruptions_of_each_file_kind_are_named_or_survived(target: str, inputs: dict[str, Path]) -> None:
    relative, is_json, _, _ = TARGETS[target]
    first, _, rest = relative.partition("/")
    original = (inputs[first] / rest if rest else inputs[first]).read_bytes()
    strategy = json_corruptions(original) if is_json else corruptions(original)

    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=strategy)
    def check(data: bytes) -> None:
        outcome = corrupted_run(inputs, target, data)
        assert outcome.problem is None, f"{target}, {len(data)} bytes: {outcome.problem}\n{outcome.output}"

    check()


def test_the_harness_catches_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The judge itself can fail: an exception that escapes a command is reported as a traceback."""
    import selfsup.api

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(selfsup.api, "train", broken)
    from test_trust import QUICK

    outcome = run(["train", "simclr", *QUICK, "--out", str(tmp_path / "o")])
    assert outcome.problem == "traceback" and "a bug" in outcome.output
