"""The architecture holds: imports point down the layers, and the torch-free parts import without torch.

Layers, top to bottom (docs/architecture.md)::

    cli -> train -> evaluation -> infer -> {datasets, models} -> hub -> leaves

A module may import from its own layer or any layer below, never above. Every import
counts, including the ones inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mer"

#: layer of each top-level part of the package (a module or a sub-package); higher imports lower
LAYERS = {
    "cli": 6, "__main__": 6, "demo": 6,
    "train": 5,
    "evaluation": 4, "library": 4,
    "infer": 3, "plot": 3, "serve": 5,
    "datasets": 2, "models": 2,
    "bundle": 1, "hf_hub": 1, "convert": 1, "synth": 1,
    "audio": 0, "features": 0, "cache": 0, "metrics": 0, "scales": 0, "grid": 0, "io": 0, "errors": 0, "reliability": 0,
    "_version": 0, "workers": 0, "meta": 0, "tags": 0, "__init__": 7,  # the package face imports lazily from any layer
}


def _part(module: str) -> str:
    """``mer.infer.backends`` -> ``infer``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``mer`` import in ``path``."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    pkg = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names if n.startswith("mer")]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("mer")]
    return out


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_imports_point_down():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        here = LAYERS[_part(module)]
        for line, target in _imports(path):
            there = LAYERS.get(_part(target))
            if there is None or target == "mer":
                continue
            if there > here:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target} (layer {there} > {here})")
    assert not wrong, "imports pointing up:\n" + "\n".join(wrong)


def test_registry_imports_no_zoo_module():
    targets = {t for _, t in _imports(PACKAGE / "models" / "registry.py")}
    assert not {t for t in targets if t.split(".")[-1] in ("crnn", "dense", "musicnn")}


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("statement", [
    "import mer.metrics, mer.evaluation",
    "from mer.evaluation.evaluate import evaluate",
    "from mer.datasets.items import load_items; from mer.datasets.splits import kfold",
    "from mer.bundle import Bundle; Bundle.resolve('default').digest",
    "from mer.infer import Inference, Predictor",
    "import mer.cli; mer.cli.build_parser()",
])
def test_torch_free_parts_import_without_torch(statement):
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH + statement], capture_output=True, text=True,
                         timeout=120, cwd=PACKAGE.parent)
    assert res.returncode == 0, res.stderr
