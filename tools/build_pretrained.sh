#!/usr/bin/env bash
# Rebuild the bundled models in mer/pretrained/ from the 4Q clips (see mer/pretrained/*.md).
# Run from the repository root with the virtual environment active and ../shared/data present.
#   1. 5-fold artist-grouped CV of each recipe (the numbers in the model cards);
#   2. one model per recipe on all 600 clips (10% of artists held out for early stopping);
#   3. copy its best checkpoint into the package.
set -euo pipefail
DATA=${DATA:-../shared/data}
COMMON=(--dataset 4q --root "$DATA/4q-dev" --dataset-option "lexicon=$DATA/lexicons/Ratings_Warriner_et_al.csv"
        --quadrant-weight 0.5 --seed 0 --quiet)
DEFAULT=(--model musicnn --epochs 200 --patience 25 --crop-seconds 25 --batch-size 32 --lr 0.001
         --optimizer adamw --weight-decay 0.05 --loss "mse+0.5*ccc")
FAST=(--config benchmarks/fast.yaml)

for recipe in default fast; do
  declare -n ARGS=${recipe^^}
  [ -f "runs/$recipe-cv/summary.json" ] || mer train "${COMMON[@]}" "${ARGS[@]}" --folds 5 --out "runs/$recipe-cv"
  [ -f "runs/$recipe-all/summary.json" ] || mer train "${COMMON[@]}" "${ARGS[@]}" --folds 1 --out "runs/$recipe-all"
  cp "runs/$recipe-all/fold0/best.safetensors" "mer/pretrained/$recipe.safetensors"
  cp "runs/$recipe-all/fold0/best.json" "mer/pretrained/$recipe.json"
  cat "runs/$recipe-cv/summary.md"
done
