#!/usr/bin/env bash
# Rebuild the bundled models in mer/pretrained/ from the 4Q clips (see mer/pretrained/*.md).
# Run from the repository root with the virtual environment active and ../shared/data present.
#   1. 5-fold artist-grouped CV of each recipe (the numbers in the model cards);
#   2. one model per recipe on all 600 clips (10% of artists held out for early stopping);
#   3. copy its best checkpoint into the package;
#   4. export the default's ONNX graphs, which `mer predict` runs without PyTorch.
set -euo pipefail
DATA=${DATA:-../shared/data}
COMMON=(--dataset 4q --root "$DATA/4q-dev" --dataset-option "lexicon=$DATA/lexicons/Ratings_Warriner_et_al.csv"
        --quadrant-weight 0.5 --seed 0 --quiet)
DEFAULT=(--model musicnn --epochs 200 --patience 25 --crop-seconds 25 --batch-size 32 --lr 0.001
         --optimizer adamw --weight-decay 0.05 --loss "mse+0.5*ccc")

[ -f runs/default-cv/summary.json ] || mer train "${COMMON[@]}" "${DEFAULT[@]}" --folds 5 --out runs/default-cv
[ -f runs/default-all/summary.json ] || mer train "${COMMON[@]}" "${DEFAULT[@]}" --folds 1 --out runs/default-all
[ -f runs/fast-cv/summary.json ] || mer train --config benchmarks/fast.yaml --folds 5 --out runs/fast-cv --quiet
[ -f runs/fast-all/summary.json ] || mer train --config benchmarks/fast.yaml --folds 1 --out runs/fast-all --quiet
for recipe in default fast; do
  cp "runs/$recipe-all/fold0/best.safetensors" "mer/pretrained/$recipe.safetensors"
  cp "runs/$recipe-all/fold0/best.json" "mer/pretrained/$recipe.json"
done
mer export --runtime --model mer/pretrained/default
cat runs/default-cv/summary.md runs/fast-cv/summary.md
