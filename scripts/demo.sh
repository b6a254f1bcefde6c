#!/usr/bin/env bash
# The main job, offline: SimCLR with Conv6 on Fashion-MNIST, evaluated on the test split next to
# raw pixels and a random-init Conv6. About 8 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${OUT:-runs/demo}
rm -rf "$OUT"
selfsup train simclr --dataset fashion-mnist --backbone conv6 --epochs 4 --limit 6000 --out "$OUT/simclr"
selfsup baseline --dataset fashion-mnist --backbone conv6 --out "$OUT/baseline"
echo "results: $OUT/simclr/eval.json, $OUT/baseline/*/eval.json; loss curve: $OUT/simclr/plots/loss.png"
