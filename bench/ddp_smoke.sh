#!/usr/bin/env bash
# Every registered method (but nn-byol, which needs a neighbour file) for 2 epochs of tiny synthetic data under
# torchrun with 2 gloo processes: a smoke check of the DDP path.  bash bench/ddp_smoke.sh
for m in $(selfsup methods | awk '{print $1}'); do
  extra=""
  bb=mlp
  [ "$m" = layerwise ] && bb=mlp
  [ "$m" = nn-byol ] && continue
  out=$(OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 -m selfsup train $m --dataset synthetic --backbone $bb --limit 256 --epochs 2 --batch-size 64 --set train.threads=1 --no-eval --quiet --out /tmp/ddpall/$m 2>&1)
  echo "$m: $(echo "$out" | grep -E "^trained|^error" | head -1) $(echo "$out" | grep -E "Error|error" | grep -v "^error" | tail -1 | cut -c1-200)"
done
