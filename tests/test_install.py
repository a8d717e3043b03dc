"""The slim install: ``mer predict`` with the default model needs neither torch nor matplotlib,
and a command that needs a missing extra says which ``pip install`` line to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: a Python prelude that makes the optional packages unimportable, as in a slim install
BLOCK = """
import sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in BLOCKED else _find(name, *a)
from mer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _slim(*args: str, blocked: tuple[str, ...] = ("torch", "matplotlib", "sklearn", "av")) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK.format(blocked=set(blocked)), *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_predict_runs_without_torch_or_matplotlib(wav_file):
    res = _slim("predict", str(wav_file), "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert "p_q1" in res.stdout and res.stdout.count("\n") == 2


@pytest.mark.parametrize("args, extra", [
    (["predict", "WAV", "--plot", "x.png"], "plot"),
    (["predict", "WAV", "--model", "fast"], "train"),
    (["train", "--dataset", "folder", "--root", "ROOT", "--out", "OUT"], "train"),
    (["export", "--runtime", "--model", "default"], "export"),  # its own extra, which brings torch too
])
def test_missing_extra_is_one_line_naming_the_install(wav_file, tmp_path, args, extra):
    args = [a.replace("WAV", str(wav_file)).replace("ROOT", str(tmp_path)).replace("OUT", str(tmp_path / "o"))
            for a in args]
    res = _slim(*args)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and f"pip install 'mer-toolkit[{extra}]'" in res.stderr, res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr


def test_models_lists_the_bundled_models_first_even_without_torch():
    res = _slim("models", "--no-time")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("Bundled") and any(line.startswith("| default | 3 |") for line in lines)
    assert "pip install 'mer-toolkit[train]'" in res.stdout
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert "ONNX Runtime (ready)" in rows["default"]  # runs on the slim install
    assert "PyTorch, not installed: pip install 'mer-toolkit[train]'" in rows["fast"]  # says so before predict does
