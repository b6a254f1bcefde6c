#!/usr/bin/env bash
# Recipe study, stage 2: SimCLR + Conv6, combinations of the stage-1 levers that helped (temperature 0.1-0.2 for
# kNN, SGD for NMI), batch size and learning rate; same budget and validation protocol as stage 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/results/study/simclr-stage2}
COMMON=(--epochs 2 --quiet --set eval.split=val --set eval.train_limit=10000 --set train.channels_last=on)
SGD=(--set optim.optimizer=sgd --set optim.weight_decay=5e-4 --set optim.warmup_epochs=0.2)
cell() {  # cell NAME [train options]
  local name=$1; shift
  [ -e "$OUT/$name/eval.json" ] && return 0
  local resume=(); [ -e "$OUT/$name/checkpoints/last.pt" ] && resume=(--resume)
  selfsup train simclr --out "$OUT/$name" "${COMMON[@]}" "${resume[@]}" "$@" > "$OUT/$name.log" 2>&1 || echo "failed: $name"
}
mkdir -p "$OUT"
cell sgd-lr=0.12-t=0.2 "${SGD[@]}" --lr 0.12 --set params.temperature=0.2
cell adam-t=0.2-batch=128 --set params.temperature=0.2 --batch-size 128
cell adam-lr=3e-3-t=0.2 --set params.temperature=0.2 --lr 3e-3
cell sgd-lr=0.06-t=0.2-batch=128 "${SGD[@]}" --lr 0.06 --set params.temperature=0.2 --batch-size 128
cell adam-t=0.2-wd=1e-4 --set params.temperature=0.2 --set optim.weight_decay=1e-4
