"""Approximate search (mer.library.ann): recall against exact search, the graph kept beside the
library and reused, a damaged graph rebuilt, the auto rule, the Library and CLI switch."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth
from mer.errors import ConfigError, MERWarning
from mer.library import Library, ann
from mer.library.search import ExactIndex


def structured(n: int, dim: int = 64, rank: int = 12, seed: int = 0) -> np.ndarray:
    """Rows with the low effective rank of real clip embeddings (a random one is no test of ANN)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, rank)) @ rng.standard_normal((rank, dim)) + 0.1 * rng.standard_normal((n, dim))
            ).astype(np.float32)


def test_recall_against_exact_and_exclusion(tmp_path: Path):
    x = structured(20_000)
    approx, exact = ann.AnnIndex(x, cache=tmp_path), ExactIndex(x, "cosine")
    rng = np.random.default_rng(1)
    hits = 0
    for i in rng.choice(len(x), 50, replace=False):
        q = x[i] + 0.05 * rng.standard_normal(x.shape[1]).astype(np.float32)
        got, sim = approx.search(q, 10)
        want, want_sim = exact.search(q, 10)
        hits += len(set(got) & set(want))
        assert np.all(np.diff(sim) <= 1e-6), "best first"
        # same scale as exact search: each score is the cosine similarity of the row it names (float16
        # vectors in the graph); which rows come back is the approximate part, measured by recall below
        cos = x[got] @ q / np.linalg.norm(x[got], axis=1) / np.linalg.norm(q)
        np.testing.assert_allclose(sim, cos, atol=2e-3)
        assert sim[0] <= want_sim[0] + 2e-3
    assert hits / 500 >= 0.95
    got, _ = approx.search(x[7], 5, exclude=np.array([7]))
    assert 7 not in got and len(got) == 5


def test_graph_is_kept_reused_and_rebuilt_when_damaged(tmp_path: Path):
    x = structured(3_000)
    first = ann.AnnIndex(x, cache=tmp_path)
    assert first.built and first.path.is_file()
    again = ann.AnnIndex(x, cache=tmp_path)
    assert not again.built
    assert np.array_equal(again.search(x[0], 10)[0], first.search(x[0], 10)[0])
    other = ann.AnnIndex(x[:2_000], cache=tmp_path)  # the library changed: a new graph beside the old
    assert other.built and other.path != first.path
    ann.AnnIndex(x[:1_000], cache=tmp_path)
    assert len(list(tmp_path.glob("*.usearch"))) == ann.KEEP
    damaged = other.path
    damaged.write_bytes(b"not a graph" * 10)
    with pytest.warns(MERWarning, match="rebuilding"):
        rebuilt = ann.AnnIndex(x[:2_000], cache=tmp_path)
    assert rebuilt.search(x[5], 1)[0][0] == 5
    assert rebuilt.grown_from == 1_000  # made again from the kept graph of its first 1,000 rows
    assert not ann.AnnIndex(x[:2_000], cache=tmp_path).built  # and the damaged file replaced


def test_a_library_that_grew_extends_its_kept_graph(tmp_path: Path):
    x = structured(4_000, seed=3)
    first = ann.AnnIndex(x[:3_000], cache=tmp_path)
    assert first.built and first.grown_from == 0
    grown = ann.AnnIndex(x, cache=tmp_path)  # 1,000 new songs, appended as the library keeps them
    assert not grown.built and grown.grown_from == 3_000 and len(grown) == 4_000 and grown.path.is_file()
    exact = ExactIndex(x.copy(), "cosine")  # (it normalises its matrix in place)
    hits = sum(len(set(grown.search(x[i], 10)[0]) & set(exact.search(x[i], 10)[0])) for i in range(2_950, 3_050))
    assert hits / 1_000 >= 0.95  # old and new rows are found alike
    assert first.path.is_file()  # the old graph is kept (two per library), untouched
    reread = ann.AnnIndex(x, cache=tmp_path)  # the next process maps the extended graph as it is
    assert not reread.built and reread.grown_from == 0
    changed = x.copy()
    changed[10] += 1.0  # a song re-indexed: its row changed, so no kept graph is a prefix
    assert ann.AnnIndex(changed, cache=tmp_path).built


def test_temporaries_of_other_saves_are_neither_kept_graphs_nor_pruned_into(tmp_path: Path):
    x = structured(1_500, dim=16, seed=4)
    small = ann.AnnIndex(x[:1_000], cache=tmp_path)
    stale = tmp_path / f".tmp-999-{small.path.name.replace('1000x16', '1200x16')}"
    stale.write_bytes(b"half-written by a process that died")  # a save that never finished
    ann.AnnIndex(x[:1_200] + 1.0, cache=tmp_path)  # another library state: a second graph is saved
    assert small.path.is_file()  # the stale temporary did not take its place among the two kept
    assert ann.AnnIndex(x, cache=tmp_path).grown_from == 1_000


def test_auto_rule_and_missing_extra(monkeypatch: pytest.MonkeyPatch):
    x = structured(500)
    assert isinstance(ann.index_factory("auto")(x, "cosine"), ExactIndex)
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 100)
    with pytest.warns(MERWarning, match="building the approximate search graph of 500 songs"):  # says it is slow
        assert isinstance(ann.index_factory("auto")(x, "cosine"), ann.AnnIndex)
    assert isinstance(ann.index_factory("ann")(x[:, :2], "euclidean"), ExactIndex)  # the plane stays exact
    with pytest.raises(ValueError, match="auto, exact or ann"):
        ann.index_factory("hnsw")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "usearch" else real(name, *a))
    assert isinstance(ann.index_factory("auto")(x, "cosine"), ExactIndex)  # auto without the extra: exact
    with pytest.raises(ConfigError, match=r"pip install 'mer-toolkit\[ann\]'"):
        ann.index_factory("ann")


def test_library_and_cli_switch(tmp_path: Path):
    music = tmp_path / "music"
    music.mkdir()
    for i, (v, a) in enumerate([(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.2, 0.9)]):
        sf.write(music / f"c{i}.wav", synth.clip(v, a, seconds=3.0, sr=16000, seed=i), 16000)
    db = tmp_path / "lib.sqlite"
    with Library(db) as lib:
        lib.index(music, workers=1, progress=False)
        exact = lib.search_like(music / "c0.wav", k=4)
    with Library(db, index="ann") as lib:
        approx = lib.search_like(music / "c0.wav", k=4)
    assert [s["id"] for s in approx] == [s["id"] for s in exact]  # 5 songs: the graph is exact
    assert list((tmp_path / "lib.sqlite.ann").glob("*.usearch"))
    out = subprocess.run([sys.executable, "-m", "mer", "search", str(db), "--like", str(music / "c1.wav"),
                          "--index", "ann", "-k", "2", "--format", "json"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reused graph loads without a warning
        with Library(db, index="ann") as lib:
            assert len(lib.search_like(music / "c0.wav", k=4)) == 4


def test_usearch_then_onnxruntime_import_in_one_process():
    """usearch 2.26 imported before onnxruntime 1.32 crashed the process (segfault); the ann
    extra pins a pair that does not. `mer serve --library` and the API load both."""
    out = subprocess.run([sys.executable, "-c", "import usearch.index, onnxruntime; print('ok')"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-500:])
