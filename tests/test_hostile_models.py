"""Hostile model files against ``mer predict``: swapped or foreign ONNX graphs, files that are not
mer checkpoints. Each is one ``mer: error:`` line naming the file and saying what to do (the
hub cases, a broken ``config.json`` and pickled weights, are in ``tests/test_hf.py``; a corrupt
MP3 in ``tests/test_audio.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth
from mer.errors import ModelError
from mer.bundle import PRETRAINED

REPO = Path(__file__).resolve().parents[1]


def _predict(*args: str) -> tuple[int, list[str]]:
    res = subprocess.run([sys.executable, "-m", "mer", "predict", *args], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    return res.returncode, res.stderr.strip().splitlines()


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("songs")
    for i in range(3):
        sf.write(d / f"s{i}.wav", synth.clip(0.2, 0.2, 3.0, 16000, seed=i), 16000)
    return sorted(d.glob("*.wav"))


def _copy_default(folder: Path) -> Path:
    """The bundled default model (checkpoint and its two runtime graphs) copied to ``folder``."""
    folder.mkdir()
    for f in PRETRAINED.glob("default.*"):
        shutil.copy(f, folder / f.name)
    return folder / "default"


def test_graph_signature_reads_names_and_ranks_without_onnxruntime(tmp_path):
    from mer.infer.backends import graph_role, graph_signature

    embed = graph_signature(PRETRAINED / "default.embed.onnx")
    head = graph_signature(PRETRAINED / "default.head.onnx")
    assert embed == ([("features", 4)], [("sequence", 3), ("tags", 3)])
    assert head == ([("sequence", 3)], [("static", 2), ("dynamic", 3), ("quadrant", 2), ("moods", 2)])  # version 3
    assert graph_role(embed) == "embed" and graph_role(head) == "head"
    assert graph_role(([("features", 4)], [("static", 2), ("dynamic", 3)])) == "single"  # mer export --onnx
    assert graph_role(([("features", 4)], [("frames", 3)])) == "embed"  # a hub encoder's window graph
    data = (PRETRAINED / "default.embed.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("not a graph\n")
    for bad in ("cut.onnx", "text.onnx"):
        with pytest.raises(ValueError):
            graph_signature(tmp_path / bad)


@pytest.mark.parametrize("how", ["swapped", "head in both", "embed in both"])
def test_swapped_onnx_graphs_are_one_error_naming_the_graph(tmp_path, songs, how):
    stem = _copy_default(tmp_path / "run")
    embed, head = Path(f"{stem}.embed.onnx"), Path(f"{stem}.head.onnx")
    e, h = embed.read_bytes(), head.read_bytes()
    embed.write_bytes({"swapped": h, "head in both": h, "embed in both": e}[how])
    head.write_bytes({"swapped": e, "head in both": h, "embed in both": e}[how])
    wrong = head if how == "embed in both" else embed
    role = "head" if how == "embed in both" else "embed"
    for files in (songs[:1], songs):  # one file (no worker processes), and a batch (worker processes)
        rc, lines = _predict(*map(str, files), "--model", str(stem))
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("mer: error:"), lines
        assert f"{wrong}: not the {role} graph mer runs" in lines[0] and "rerun `mer export --runtime" in lines[0]
        assert ("take 'features'" if role == "embed" else "take 'sequence'") in lines[0]
    assert "the two graph files look swapped" in lines[0]


def test_a_one_window_export_in_place_of_the_embed_graph_is_named(tmp_path):
    """`mer export --onnx FILE` output (features -> static, dynamic) given as a runtime graph."""
    from mer.bundle import Bundle
    from mer.infer.backends import check_graph, check_graphs

    stem = _copy_default(tmp_path / "run")
    with pytest.raises(ModelError, match=r"it is a one-window graph of `mer export --onnx`"):
        check_graph(f"{stem}.embed.onnx", "embed", ([("features", 4)], [("static", 2), ("dynamic", 3)]), "run")
    head = Path(f"{stem}.head.onnx")
    head.write_bytes(head.read_bytes()[:5000])  # cut short
    with pytest.raises(ModelError, match=r"default\.head\.onnx: unreadable ONNX graph"):
        check_graphs(Bundle.resolve(stem))


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path, songs):
    from safetensors.numpy import save_file

    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n")
    weights = tmp_path / "random.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(weights))  # no mer metadata beside it
    for model, said in ((notes, f"{notes}: not a mer checkpoint"),
                        (weights, f"{weights}: not a mer checkpoint: random.json, its metadata, is not beside it")):
        rc, lines = _predict(str(songs[0]), "--model", str(model))
        assert rc == 1 and len(lines) == 1 and lines[0].startswith(f"mer: error: {said}"), lines
        assert "checkpoint not found" not in lines[0] and "a run folder of `mer train`" in lines[0]
