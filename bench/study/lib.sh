# Shared by the recipe-study scripts: the study budget and protocol, and one cell = one run directory.
# Budget per cell: 2 epochs over the 55,000 Fashion-MNIST training images left after the validation split
# (110k images seen), Conv6; scored on the validation split (5,000 images held out of train) with the probe and
# kNN fitted on 10,000 of the other 55,000. Every cell starts from the seeds' settings (--recipe seed), so each
# lever is explicit on its line.
COMMON=(--epochs 2 --quiet --recipe seed --set eval.split=val --set eval.train_limit=10000 --set train.channels_last=on)
# SimCLR's tuned optimisation (stage 2's best): SGD + momentum, weight decay 5e-4, a short warm-up
SGD=(--set optim.optimizer=sgd --set optim.weight_decay=5e-4 --set optim.warmup_epochs=0.2)
# stage 2's best cell (SimCLR's tuned recipe, lr given per cell): SGD as above, temperature 0.2, batch 128
BEST=("${SGD[@]}" --set params.temperature=0.2 --batch-size 128)

cell() {  # cell METHOD NAME [train options]: train into $OUT/NAME unless done; resume an interrupted cell
  local method=$1 name=$2; shift 2
  [ -e "$OUT/$name/eval.json" ] && return 0
  local resume=(); [ -e "$OUT/$name/checkpoints/last.pt" ] && resume=(--resume)
  mkdir -p "$OUT"
  selfsup train "$method" --out "$OUT/$name" "${COMMON[@]}" "${resume[@]}" "$@" > "$OUT/$name.log" 2>&1 \
    || echo "failed: $name (see $OUT/$name.log)"
}
