#!/usr/bin/env bash
# Recipe study, stage 2: SimCLR + Conv6, combinations of the stage-1 levers that helped (temperature 0.1-0.2 for
# kNN, SGD for NMI), batch size and learning rate. Budget and protocol: lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/study/lib.sh
OUT=${OUT:-bench/results/study/simclr-stage2}
cell simclr sgd-lr=0.12-t=0.2 "${SGD[@]}" --lr 0.12 --set params.temperature=0.2
cell simclr adam-t=0.2-batch=128 --set params.temperature=0.2 --batch-size 128
cell simclr adam-lr=3e-3-t=0.2 --set params.temperature=0.2 --lr 3e-3
cell simclr sgd-lr=0.06-t=0.2-batch=128 "${SGD[@]}" --lr 0.06 --set params.temperature=0.2 --batch-size 128
cell simclr adam-t=0.2-wd=1e-4 --set params.temperature=0.2 --set optim.weight_decay=1e-4
