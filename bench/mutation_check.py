"""Break the code the trust tests cover, one mutation at a time, and record that the tests fail.

Each mutation replaces one snippet of the package (a stop-gradient, a train-only statistic, a safe loader, a
formula) in a throw-away copy of the repository and runs the tests named for it. A mutation the tests do not
catch is a test that cannot fail; the run exits 1 if there is one.

    python bench/mutation_check.py            # writes bench/results/mutations.json
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (what the bug is, file, snippet, replacement, tests that must fail)
MUTATIONS = [
    ("SimSiam without stop-gradient on its target", "selfsup/methods/siamese.py",
     "t1, t2 = z1.detach(), z2.detach()", "t1, t2 = z1, z2",
     "tests/test_classic_bugs.py::test_gradients_reach_only_the_online_branch"),
    ("BYOL target branch with gradients (no_grad and frozen parameters removed)", "selfsup/methods/siamese.py",
     "    @torch.no_grad()\n    def target(", "    def target(",
     "tests/test_classic_bugs.py::test_gradients_reach_only_the_online_branch",
     [("copy.deepcopy(backbone).requires_grad_(False)", "copy.deepcopy(backbone)"),
      ("copy.deepcopy(self.projector).requires_grad_(False)", "copy.deepcopy(self.projector)")]),
    ("DirectPred predictor trained by the optimizer", "selfsup/methods/siamese.py",
     "self.predictor.requires_grad_(False)", "pass",
     "tests/test_classic_bugs.py::test_gradients_reach_only_the_online_branch"),
    ("probe standardised with test statistics", "selfsup/eval/protocols.py",
     "mean, std = train.mean(0), train.std(0) + 1e-6", "mean, std = test.mean(0), test.std(0) + 1e-6",
     "tests/test_classic_bugs.py::test_train_fitted_statistics_ignore_the_test_features"),
    ("k-means fitted on the test features", "selfsup/eval/protocols.py",
     "model.fit(train.numpy())", "model.fit(test.numpy())",
     "tests/test_classic_bugs.py::test_train_fitted_statistics_ignore_the_test_features"),
    ("projection subspace fitted on train and test", "selfsup/eval/protocols.py",
     "_, _, v = torch.svd_lowrank(train[rows]", "_, _, v = torch.svd_lowrank(torch.cat([test, train])[rows]",
     "tests/test_classic_bugs.py::test_train_fitted_statistics_ignore_the_test_features"),
    ("kNN bank and queries swapped", "selfsup/eval/__init__.py",
     "knn = knn_accuracy(train_small, train_labels, test_small, test_labels,",
     "knn = knn_accuracy(test_small, test_labels, train_small, train_labels,",
     "tests/test_classic_bugs.py::test_a_swap_of_train_and_test_would_change_the_scores"),
    ("linear probe trained on the test split", "selfsup/eval/__init__.py",
     "probe = linear_probe(train, train_labels, test, test_labels,",
     "probe = linear_probe(test, test_labels, train, train_labels,",
     "tests/test_classic_bugs.py::test_a_swap_of_train_and_test_would_change_the_scores"),
    ("DirectPred without the square root of the eigenvalues", "selfsup/methods/siamese.py",
     "p = (s.sqrt() + eps).clamp_min(1e-4)", "p = (s + eps).clamp_min(1e-4)",
     "tests/test_classic_bugs.py::test_directpred_predictor_matches_a_jacobi_eigendecomposition"),
    ("DirectCopy normalised by the spectral instead of the Frobenius norm", "selfsup/methods/siamese.py",
     "return F / torch.linalg.matrix_norm(F) + eps", "return F / torch.linalg.matrix_norm(F, ord=2) + eps",
     "tests/test_classic_bugs.py::test_directcopy_predictor_matches_an_entrywise_reference"),
    ("cosine momentum schedule off by one step", "selfsup/ops/schedules.py",
     "progress = np.arange(total_steps) / max(total_steps, 1)",
     "progress = (np.arange(total_steps) + 1) / max(total_steps, 1)",
     "tests/test_classic_bugs.py::test_cosine_momentum_is_byols_schedule_written_as_a_squared_sine"),
    ("negative cosine without normalising the target", "selfsup/losses/noncontrastive.py",
     "return -F.cosine_similarity(p.float(), z.float(), dim=1).mean()",
     "return -(F.normalize(p.float(), dim=1) * z.float()).sum(1).mean()",
     "tests/test_classic_bugs.py::test_negative_cosine_on_hand_picked_vectors "
     "tests/test_classic_bugs.py::test_gradients_reach_only_the_online_branch"),
    ("checkpoints unpickled with weights_only=False", "selfsup/data/readers.py",
     "return torch.load(path, map_location=device, weights_only=True)",
     "return torch.load(path, map_location=device, weights_only=False)",
     "tests/test_trust.py::test_a_crafted_checkpoint_is_refused_and_its_code_does_not_run "
     "tests/test_trust.py::test_a_crafted_neighbour_file_is_refused_and_its_code_does_not_run"),
    ("CIFAR batches through the plain unpickler", "selfsup/data/readers.py",
     'batch = _ArrayUnpickler(handle, encoding="bytes").load()', 'batch = pickle.load(handle, encoding="bytes")',
     "tests/test_trust.py::test_a_crafted_cifar_batch_is_refused_and_its_code_does_not_run"),
    ("no previous checkpoint kept", "selfsup/train/trainer.py",
     "save_atomic(state, self.checkpoint_path, keep_previous=True)", "save_atomic(state, self.checkpoint_path)",
     "tests/test_trust.py::test_a_truncated_last_checkpoint_falls_back_to_the_previous_one"),
    ("a user's mistake exits 1", "selfsup/cli.py",
     "raise Fail(str(error), EXIT_USER) from None", "raise Fail(str(error), 1) from None",
     "tests/test_trust.py::test_a_mistake_exits_2_with_one_clear_message"),
    ("contractive penalty on an untied decoder entry", "selfsup/methods/cae.py",
     "self.tie_decoder_entry()", "pass",
     "tests/test_reconstruction.py::test_contractive_penalty_cannot_be_rescaled_away"),
]


def run_one(mutation: tuple) -> dict:  # type: ignore[type-arg]
    description, path, old, new, tests, *extra = mutation
    replacements = [(path, old, new)] + [(path, a, b) for a, b in (extra[0] if extra else [])]
    with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
        copy = Path(folder)
        for name in ("selfsup", "tests", "pyproject.toml"):
            source = ROOT / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
        for file, a, b in replacements:
            target = copy / file
            text = target.read_text()
            if text.count(a) != 1:
                return {"mutation": description, "file": file, "outcome": "not applied",
                        "detail": f"snippet found {text.count(a)} times: {a!r}"}
            target.write_text(text.replace(a, b))
        tic = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(copy)}
        check = subprocess.run([sys.executable, "-c", "import selfsup, sys; print(selfsup.__file__)"], cwd=copy,
                               env=env, capture_output=True, text=True)
        if not check.stdout.strip().startswith(str(copy)):
            raise SystemExit(f"the mutant copy is not the package imported ({check.stdout.strip()})")
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider", *tests.split()],
                                cwd=copy, env=env, capture_output=True, text=True)
        summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
        last = summary[-1].strip("= ") if summary else (result.stdout.strip().splitlines() or [""])[-1]
        return {"mutation": description, "file": path, "tests": tests.split(),
                "outcome": "caught" if result.returncode == 1 else ("missed" if result.returncode == 0 else "error"),
                "pytest": last, "seconds": round(time.perf_counter() - tic, 1)}


def main() -> int:
    results = []
    for mutation in MUTATIONS:
        record = run_one(mutation)
        print(f"{record['outcome']:>11}  {record['mutation']}  ({record.get('pytest', record.get('detail'))})",
              flush=True)
        results.append(record)
    out = ROOT / "bench" / "results" / "mutations.json"
    out.write_text(json.dumps({"command": "python bench/mutation_check.py", "mutations": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["outcome"] == "caught" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
