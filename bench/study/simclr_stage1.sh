#!/usr/bin/env bash
# Recipe study, stage 1: SimCLR + Conv6 on Fashion-MNIST, one lever at a time from seed 000's settings
# (Adam 1e-3, batch 256, temperature 0.5, crop 0.2-1 + flip + jitter, no blur). Budget and protocol: lib.sh.
# `python bench/study/summarize.py` tabulates every stage.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/study/lib.sh
OUT=${OUT:-bench/results/study/simclr-stage1}
cell simclr default
cell simclr temperature=0.2 --set params.temperature=0.2
cell simclr temperature=0.1 --set params.temperature=0.1
cell simclr sgd-lr=0.12 "${SGD[@]}" --lr 0.12
cell simclr backbone=conv6-bn --backbone conv6-bn
cell simclr blur=0.5 --set augment.blur_p=0.5
cell simclr crop=0.08-1 --set augment.crop_scale=0.08,1.0
cell simclr sgd-lr=0.3 "${SGD[@]}" --lr 0.3
cell simclr adamw-wd=0.05 --set optim.optimizer=adamw --set optim.weight_decay=0.05
cell simclr crop=0.4-1 --set augment.crop_scale=0.4,1.0
