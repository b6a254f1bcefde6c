#!/usr/bin/env bash
# Recipe study, stage 3: around stage 2's best cell (SGD lr 0.06, momentum 0.9, weight decay 5e-4, temperature
# 0.2, batch 128), and the seed spread of the old defaults and of that cell (training seeds 1 and 2; the
# validation split stays the same). Same budget and validation protocol as stages 1 and 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/results/study/simclr-stage3}
COMMON=(--epochs 2 --quiet --set eval.split=val --set eval.train_limit=10000 --set train.channels_last=on)
SGD=(--set optim.optimizer=sgd --set optim.weight_decay=5e-4 --set optim.warmup_epochs=0.2)
cell() {  # cell NAME [train options]
  local name=$1; shift
  [ -e "$OUT/$name/eval.json" ] && return 0
  local resume=(); [ -e "$OUT/$name/checkpoints/last.pt" ] && resume=(--resume)
  selfsup train simclr --out "$OUT/$name" "${COMMON[@]}" "${resume[@]}" "$@" > "$OUT/$name.log" 2>&1 || echo "failed: $name"
}
mkdir -p "$OUT"
BEST=("${SGD[@]}" --set params.temperature=0.2 --batch-size 128)
cell best-seed=1 "${BEST[@]}" --lr 0.06 --seed 1
cell best-lr=0.12 "${BEST[@]}" --lr 0.12
cell best-batch=64-lr=0.03 "${SGD[@]}" --set params.temperature=0.2 --batch-size 64 --lr 0.03
cell best-t=0.1 "${SGD[@]}" --set params.temperature=0.1 --batch-size 128 --lr 0.06
cell default-seed=1 --seed 1
cell best-seed=2 "${BEST[@]}" --lr 0.06 --seed 2
cell default-seed=2 --seed 2
