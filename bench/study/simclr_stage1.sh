#!/usr/bin/env bash
# Recipe study, stage 1: SimCLR + Conv6 on Fashion-MNIST, one lever at a time from the old defaults
# (Adam 1e-3, temperature 0.5, crop 0.2-1 + flip + jitter, no blur), scored on the validation split
# (5,000 images held out of train; kNN and probe fitted on 10,000 of the other 55,000).
# Budget per cell: 2 epochs over the 55,000 training images (110k images seen).
# `selfsup report bench/results/study/simclr-stage1` tabulates it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/results/study/simclr-stage1}
COMMON=(--epochs 2 --quiet --set eval.split=val --set eval.train_limit=10000 --set train.channels_last=on)
cell() {  # cell NAME [train options]
  local name=$1; shift
  [ -e "$OUT/$name/eval.json" ] && return 0
  local resume=(); [ -e "$OUT/$name/checkpoints/last.pt" ] && resume=(--resume)
  selfsup train simclr --out "$OUT/$name" "${COMMON[@]}" "${resume[@]}" "$@" > "$OUT/$name.log" 2>&1 || echo "failed: $name"
}
mkdir -p "$OUT"
cell default
cell temperature=0.2 --set params.temperature=0.2
cell temperature=0.1 --set params.temperature=0.1
cell sgd-lr=0.12 --set optim.optimizer=sgd --lr 0.12 --set optim.weight_decay=5e-4 --set optim.warmup_epochs=0.2
cell backbone=conv6-bn --backbone conv6-bn
cell blur=0.5 --set augment.blur_p=0.5
cell crop=0.08-1 --set augment.crop_scale=0.08,1.0
cell sgd-lr=0.3 --set optim.optimizer=sgd --lr 0.3 --set optim.weight_decay=5e-4 --set optim.warmup_epochs=0.2
cell adamw-wd=0.05 --set optim.optimizer=adamw --set optim.weight_decay=0.05
cell crop=0.4-1 --set augment.crop_scale=0.4,1.0
