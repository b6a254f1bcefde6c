#!/usr/bin/env bash
# Recipe study, stage 5 (issue 23, item 3): the levers the SimCLR study did not have, one at a time from SimCLR's
# tuned recipe (stage 2's best: SGD lr 0.06, momentum 0.9, weight decay 5e-4, 0.2-epoch warm-up, batch 128,
# temperature 0.2). Budget and protocol: lib.sh (2 epochs, validation split, probe and kNN fitted on 10,000
# training images), here in fp32 at 1 thread per cell, two lanes of cells side by side on 2 cores.
# Plan and decision rule, written before any cell ran: bench/results/study/simclr-stage5/PLAN.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/study/lib.sh
OUT=${OUT:-bench/results/study/simclr-stage5}
export OMP_NUM_THREADS=1
TUNED=("${BEST[@]}" --lr 0.06
       --precision fp32 --set train.channels_last=auto --set train.threads=1)
lane_a() {
  cell simclr tuned-fp32 "${TUNED[@]}"
  cell simclr bn=all "${TUNED[@]}" --set params.projection_bn=all
  cell simclr crop=0.08-1 "${TUNED[@]}" --set augment.crop_scale=0.08,1.0
}
lane_b() {
  cell simclr local-crops=2 "${TUNED[@]}" --set augment.local_crops=2
  cell simclr blur=0.5 "${TUNED[@]}" --set augment.blur_p=0.5
}
lane_a & lane_b & wait
