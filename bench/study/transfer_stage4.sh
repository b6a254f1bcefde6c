#!/usr/bin/env bash
# Recipe study, stage 4: does SimCLR's tuned optimisation (SGD lr 0.06, momentum 0.9, weight decay 5e-4, warm-up
# 0.2 epochs, batch 128) carry over to BYOL (standing for the siamese family) and Barlow Twins? Each against its
# seed settings (Adam 1e-3, batch 256). Budget and protocol: lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/study/lib.sh
OUT=${OUT:-bench/results/study/transfer-stage4}
cell byol byol-seed
cell byol byol-sgd "${SGD[@]}" --batch-size 128 --lr 0.06
cell barlow-twins barlow-twins-seed
cell barlow-twins barlow-twins-sgd "${SGD[@]}" --batch-size 128 --lr 0.06
