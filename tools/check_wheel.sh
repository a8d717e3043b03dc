#!/usr/bin/env bash
# The slim install as a user gets it: build the wheel, install it in a clean virtual environment
# (no extras: no torch, no matplotlib), and predict offline with the bundled model inside the
# wheel. Prints the environment's size. Run from the repository root; CI runs it after the tests.
set -euo pipefail
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
$PYTHON -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/mer_toolkit-*.whl)
$PYTHON - "$WHEEL" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["mer/pretrained/default.safetensors", "mer/pretrained/default.json", "mer/pretrained/default.embed.onnx",
        "mer/pretrained/default.head.onnx", "mer/pretrained/default.md", "mer/models/weights/musicnn_msd.safetensors"]
missing = [n for n in need if n not in names]
assert not missing, f"missing from the wheel: {missing}"
print(f"wheel: {sys.argv[1].rsplit('/', 1)[-1]}, {len(names)} files, bundled model inside")
PY
$PYTHON -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$WHEEL"
"$WORK/venv/bin/python" - <<'PY'
import importlib.util, sys
for extra in ("torch", "matplotlib", "sklearn"):
    assert importlib.util.find_spec(extra) is None, f"{extra} was installed by the slim install"
PY
"$WORK/venv/bin/python" -c "import numpy as np, soundfile as sf; t = np.arange(16000 * 5) / 16000; sf.write('$WORK/tone.wav', 0.3 * np.sin(2 * np.pi * 440 * t), 16000)"
(cd "$WORK" && "$WORK/venv/bin/mer" predict tone.wav --format csv)
echo "slim environment: $(du -sm "$WORK/venv" | cut -f1) MB (no torch, no matplotlib)"
