"""Approximate nearest neighbours for big libraries: an HNSW graph (usearch), kept beside the database.

Exact search (:class:`mer.library.search.ExactIndex`) costs one pass over all embeddings per
query: ~30 ms at 1,000,000 songs of 200 floats on 2 cores. :class:`AnnIndex` answers the
same cosine query from a usearch HNSW graph in well under a millisecond, at a recall@10 that
``benchmarks/library.py`` measures against exact search. It is the optional extra
``mer-toolkit[ann]``.

Building the graph is the expensive part (minutes for a million rows), so it is saved in
``<db>.ann/`` under a key made of the embeddings' bytes and memory-mapped by the next
process that loads the same embeddings; a library that changed gets a new graph (the two
newest are kept). A graph file that cannot be read is rebuilt.

:func:`index_factory` picks per matrix: the (valence, arousal) plane is always exact (2-d);
sound embeddings use the graph for ``"ann"``, and for ``"auto"`` when the extra is installed
and there are at least :data:`ANN_MIN_ROWS` of them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import MERWarning, require
from .search import ExactIndex, IndexFactory, VectorIndex

ANN_MIN_ROWS = 100_000  # below this, exact search is a few ms and needs no graph
CONNECTIVITY = 16  # HNSW edges per node
EXPANSION_ADD = 128  # candidate list while building
EXPANSION_SEARCH = 128  # candidate list while searching (recall vs speed)
KEEP = 2  # graph files kept per library


def available() -> bool:
    """Whether the ann extra (usearch) is installed."""
    return importlib.util.find_spec("usearch") is not None


class AnnIndex:
    """Cosine :class:`~mer.library.search.VectorIndex` over a float32 ``(N, D)`` matrix, on a
    usearch HNSW graph (float16 vectors), loaded from ``cache`` when it holds this matrix's."""

    def __init__(self, matrix: np.ndarray, metric: str = "cosine", cache: str | os.PathLike | None = None,
                 expansion_search: int = EXPANSION_SEARCH, threads: int = 0) -> None:
        require("usearch", "approximate search (--index ann)")
        from usearch.index import Index

        if metric != "cosine":
            raise ValueError("AnnIndex serves cosine search only; the (valence, arousal) plane is searched exactly")
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        self.n, self.dim = m.shape if m.ndim == 2 else (0, 0)
        self.path = None
        self.built = False
        if cache is not None and self.n:
            h = hashlib.blake2b(m.tobytes(), digest_size=10)
            h.update(f"M{CONNECTIVITY} ef{EXPANSION_ADD} f16".encode())  # the graph's settings are part of it
            self.path = Path(cache) / f"{h.hexdigest()}-{self.n}x{self.dim}.usearch"
        self.index = self._restore(Index) if self.path is not None and self.path.is_file() else None
        if self.index is None:
            self.index = Index(ndim=max(self.dim, 1), metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                               expansion_add=EXPANSION_ADD)
            if self.n >= ANN_MIN_ROWS:  # minutes: say so rather than look stuck
                warnings.warn(f"building the approximate search graph of {self.n:,} songs (minutes, once"
                              + (f"; kept in {self.path.parent}" if self.path else "") + ")", MERWarning, stacklevel=3)
            if self.n:
                self.index.add(np.arange(self.n, dtype=np.uint64), m, threads=threads or os.cpu_count() or 1)
            self.built = True
            self._save()
        self.index.expansion_search = expansion_search

    def _restore(self, index_cls: type) -> object | None:
        try:
            index = index_cls.restore(str(self.path), view=True)
        except (RuntimeError, ValueError, OSError) as exc:
            warnings.warn(f"{self.path}: unreadable search graph ({exc}); rebuilding it", MERWarning, stacklevel=3)
            return None
        if index is None or len(index) != self.n or index.ndim != self.dim:
            warnings.warn(f"{self.path}: search graph does not match the library; rebuilding it", MERWarning,
                          stacklevel=3)
            return None
        return index

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.index.save(str(tmp))
            os.replace(tmp, self.path)
        except OSError as exc:
            warnings.warn(f"{self.path.parent}: cannot keep the search graph ({exc.strerror or exc}); the next "
                          "process builds it again", MERWarning, stacklevel=3)
            tmp.unlink(missing_ok=True)
            return
        graphs = sorted(self.path.parent.glob("*.usearch"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in graphs[KEEP:]:
            old.unlink(missing_ok=True)

    def __len__(self) -> int:
        return self.n

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        skip = set() if exclude is None else {int(i) for i in exclude}
        want = max(0, min(k, self.n - len(skip)))
        if want == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        found = self.index.search(q, min(self.n, want + len(skip)))
        keys, dist = np.asarray(found.keys, np.int64), np.asarray(found.distances, np.float32)
        keep = np.array([int(i) not in skip for i in keys], bool)
        keys, dist = keys[keep][:want], dist[keep][:want]
        return keys, (1.0 - dist).astype(np.float32)  # usearch's cosine distance is 1 - similarity


def index_factory(kind: str = "auto", cache: str | os.PathLike | None = None) -> IndexFactory:
    """The factory a :class:`mer.library.Library` builds its indexes with: ``kind`` is
    ``"exact"``, ``"ann"`` (needs the extra) or ``"auto"`` (see the module docstring);
    ``cache``: where graphs are kept (None: rebuilt by every process)."""
    if kind not in ("auto", "exact", "ann"):
        raise ValueError(f"index must be auto, exact or ann, not {kind!r}")
    if kind == "ann":
        require("usearch", "approximate search (--index ann)")

    def make(matrix: np.ndarray, metric: str) -> VectorIndex:
        use_ann = metric == "cosine" and (kind == "ann" or (kind == "auto" and len(matrix) >= ANN_MIN_ROWS
                                                            and available()))
        return AnnIndex(matrix, metric, cache) if use_ann else ExactIndex(matrix, metric)

    return make
