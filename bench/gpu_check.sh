#!/usr/bin/env bash
# One call on a CUDA machine: the test suite with CUDA as the default device, the speed and evaluation
# benchmarks, and the accuracy runs of the given methods, everything under time limits so that one call
# fits a short lease.  Writes log.txt and results.tar.gz (benchmark JSON/Markdown, each run's config,
# metrics and eval) to $OUT.
#
#   OUT=/tmp/gpu bash bench/gpu_check.sh [METHODS]        # e.g. simclr,simsiam,byol
#
# Environment: BUDGET (standard), TEST_SECONDS (150; 0 skips the tests), BENCH_SECONDS (90),
# ACCURACY_SECONDS (270), SELFSUP_DATA (a folder holding fashion-mnist/ when it is not installed).
set -u
OUT=${OUT:-/tmp/gpu-check}
BUDGET=${BUDGET:-standard}
METHODS=${1:-simclr,simsiam,directpred,directcopy,barlow-twins,rotnet,byol,nn-byol}
WORK=${WORK:-/tmp/gpu-check-work}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/log.txt") 2>&1

section() { echo; echo "=== $* ($(date +%H:%M:%S))"; }

section machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, sklearn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'sklearn', sklearn.__version__)"
nproc

if [ "${TEST_SECONDS:-150}" != 0 ]; then
  section "tests (device auto = CUDA where present)"
  workers=""
  python3 -c "import xdist" 2>/dev/null && workers="-n 8"
  timeout "${TEST_SECONDS:-150}" python3 -m pytest -q -p no:cacheprovider $workers -rfEs tests 2>&1 | tail -40
fi

section "speed and evaluation benchmarks ($BUDGET)"
timeout "${BENCH_SECONDS:-90}" python3 -m selfsup bench speed --budget "$BUDGET" --out "$WORK" && cat "$WORK/speed-$BUDGET.md"
timeout "${BENCH_SECONDS:-90}" python3 -m selfsup bench eval --budget "$BUDGET" --out "$WORK" && cat "$WORK/eval-$BUDGET.md"

section "accuracy ($BUDGET): $METHODS"
timeout -s TERM -k 30 "${ACCURACY_SECONDS:-270}" python3 -m selfsup bench accuracy --budget "$BUDGET" --methods "$METHODS" \
  --out "$WORK" --markdown '' 2>&1 | tr '\r' '\n' | grep -v -E "[0-9]+%\|" | tail -60
[ -f "$WORK/accuracy-$BUDGET.md" ] && cat "$WORK/accuracy-$BUDGET.md"
section "runs"
for f in "$WORK"/runs/*/eval.json "$WORK"/runs/*/*/eval.json; do
  [ -f "$f" ] && python3 - "$f" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))
print(sys.argv[1].split("runs/")[1], {k: round(e[k][m], 4) for k, m in
      (("linear_probe", "accuracy"), ("knn", "accuracy"), ("kmeans", "nmi")) if k in e},
      "train s", e.get("training", {}).get("seconds"))
EOF
done
(cd "$WORK" && find . -maxdepth 4 \( -name "*.json" -o -name "*.md" -o -name "*.jsonl" -o -name "config.yaml" \) \
  -not -name "neighbors*" -print0 | tar --null -czf "$OUT/results.tar.gz" -T -)
section done
