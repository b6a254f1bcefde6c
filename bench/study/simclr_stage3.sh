#!/usr/bin/env bash
# Recipe study, stage 3: around stage 2's best cell (SGD lr 0.06, momentum 0.9, weight decay 5e-4, temperature
# 0.2, batch 128), and the seed spread of seed 000's settings and of that cell (training seeds 1 and 2; the
# validation split stays the same). Budget and protocol: lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/study/lib.sh
OUT=${OUT:-bench/results/study/simclr-stage3}
cell simclr best-seed=1 "${BEST[@]}" --lr 0.06 --seed 1
cell simclr best-lr=0.12 "${BEST[@]}" --lr 0.12
cell simclr best-batch=64-lr=0.03 "${SGD[@]}" --set params.temperature=0.2 --batch-size 64 --lr 0.03
cell simclr best-t=0.1 "${SGD[@]}" --set params.temperature=0.1 --batch-size 128 --lr 0.06
cell simclr default-seed=1 --seed 1
cell simclr best-seed=2 "${BEST[@]}" --lr 0.06 --seed 2
cell simclr default-seed=2 --seed 2
