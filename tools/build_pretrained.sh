#!/usr/bin/env bash
# Rebuild the bundled models in mer/pretrained/ from the 4Q clips (see mer/pretrained/*.md).
# Run from the repository root with the virtual environment active and ../shared/data present.
#   default: the nested benchmark (honest estimates + baselines), then the best candidate fit
#            on all 600 clips, copied into the package; then its mood-word head (nested scores,
#            fit on all clips) as version 3, and its ONNX graphs;
#   fast:    5-fold CV, then one model on all clips (10% of artists held out for early stopping).
set -euo pipefail
DATA=${DATA:-../shared/data}

mer benchmark benchmarks/nested_4q.yaml          # resumable; writes runs/nested-4q/
cp runs/nested-4q/model.safetensors mer/pretrained/default.safetensors
python - <<'PY'
import json
m = json.load(open("runs/nested-4q/model.json"))
m.update(name="default", model_version="2")
json.dump(m, open("mer/pretrained/default.json", "w"), indent=2)
PY
# version 3: the mood-word head (nested scores first, then the fit on all clips; every other weight kept)
python -m benchmarks.mood_tagger --data "$DATA" --json runs/mood-words.json > runs/mood-words.md
python -m benchmarks.mood_tagger --data "$DATA" --ship mer/pretrained/default --version 3 --nested runs/mood-words.json
mer export --runtime --model mer/pretrained/default

[ -f runs/fast-cv/summary.json ] || mer train --config benchmarks/fast.yaml --folds 5 --out runs/fast-cv --quiet
[ -f runs/fast-all/summary.json ] || mer train --config benchmarks/fast.yaml --folds 1 --out runs/fast-all --quiet
cp runs/fast-all/fold0/best.safetensors mer/pretrained/fast.safetensors
cp runs/fast-all/fold0/best.json mer/pretrained/fast.json
cat runs/nested-4q/benchmark.md runs/fast-cv/summary.md
