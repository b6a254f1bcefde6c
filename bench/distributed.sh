#!/usr/bin/env bash
# Throughput of SimCLR + Conv6 on Fashion-MNIST with 1 process (all cores) and with 2 gloo processes
# (the cores split between them), global batch 256, 20 steps, no evaluation. Run on an idle machine:
#   bash bench/distributed.sh
set -euo pipefail
CORES=${CORES:-$(nproc)}
OUT=$(mktemp -d)
for n in 1 2; do
  threads=$(( CORES / n > 0 ? CORES / n : 1 ))
  line=$(torchrun --standalone --nproc_per_node "$n" -m selfsup train simclr --dataset fashion-mnist --backbone conv6 \
    --limit 5120 --epochs 1 --batch-size 256 --set train.threads="$threads" --no-eval --quiet --out "$OUT/$n" 2>/dev/null \
    | grep "^trained")
  echo "$n process(es) x $threads thread(s): $line"
done
rm -rf "$OUT"
