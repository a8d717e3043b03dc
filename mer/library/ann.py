"""Approximate nearest neighbours for big libraries: an HNSW graph (usearch), kept beside the database.

Exact search (:class:`mer.library.search.ExactIndex`) costs one pass over all embeddings per
query: ~30 ms at 1,000,000 songs of 200 floats on 2 cores. :class:`AnnIndex` answers the
same cosine query from a usearch HNSW graph in well under a millisecond, at a recall@10 that
``benchmarks/library.py`` measures against exact search. It is the optional extra
``mer-toolkit[ann]``.

Building the graph is the expensive part (minutes for a million rows), so it is saved in
``<db>.ann/`` under a key made of the embeddings' bytes and memory-mapped by the next
process that loads the same embeddings. A library that only grew (its rows are kept in id
order, so new songs come last) gets its kept graph extended by the new rows, which costs
what those rows cost; any other change (a song re-indexed or removed) builds a new graph.
The two newest graphs are kept. A graph file that cannot be read is rebuilt.

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
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MERWarning, require
from .search import ExactIndex, IndexFactory, VectorIndex

if TYPE_CHECKING:
    from usearch.index import Index

ANN_MIN_ROWS = 100_000  # below this, exact search is a few ms and needs no graph
CONNECTIVITY = 16  # HNSW edges per node
EXPANSION_ADD = 128  # candidate list while building
EXPANSION_SEARCH = 128  # candidate list while searching (recall vs speed)
KEEP = 2  # graph files kept per library


def graph_name(m: np.ndarray) -> str:
    """File name of the graph of float32 matrix ``m``: a hash of its bytes and the graph's settings."""
    h = hashlib.blake2b(np.ascontiguousarray(m).tobytes(), digest_size=10)
    h.update(f"M{CONNECTIVITY} ef{EXPANSION_ADD} f16".encode())  # the graph's settings are part of it
    return f"{h.hexdigest()}-{len(m)}x{m.shape[1]}.usearch"


def kept_graphs(folder: Path, pattern: str = "*.usearch") -> list[Path]:
    """The graph files in ``folder``, newest first: not the hidden temporaries a save writes first
    (another process may be writing one), and not a file another process removes meanwhile."""
    dated = []
    for path in folder.glob(pattern):
        if path.name.startswith("."):
            continue
        try:
            dated.append((path.stat().st_mtime_ns, path))
        except OSError:  # renamed or pruned by another process since the listing
            continue
    return [path for _, path in sorted(dated, reverse=True)]


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
        self.path: Path | None = None
        self.built = False
        self.grown_from = 0  # rows of the kept graph this one extended (0: restored whole or built)
        if cache is not None and self.n:
            self.path = Path(cache) / graph_name(m)
        index = self._restore(Index, self.path, self.n) if self.path is not None and self.path.is_file() else None
        add_from = 0
        if index is None and self.path is not None:
            index, add_from = self._grown(Index, m)
        if index is None:
            index = Index(ndim=max(self.dim, 1), metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                               expansion_add=EXPANSION_ADD)
        self.index: Index = index
        if self.n - add_from and (add_from or len(self.index) == 0):
            if self.n - add_from >= ANN_MIN_ROWS:  # minutes: say so rather than look stuck
                what = f"adding {self.n - add_from:,} songs to" if add_from else "building"
                warnings.warn(f"{what} the approximate search graph of {self.n:,} songs (minutes, once"
                              + (f"; kept in {self.path.parent}" if self.path else "") + ")", MERWarning, stacklevel=3)
            self.index.add(np.arange(add_from, self.n, dtype=np.uint64), m[add_from:],
                           threads=threads or os.cpu_count() or 1)
            self.built, self.grown_from = not add_from, add_from
            self._save()
        elif not self.n:
            self.built = True
        # usearch declares this property's setter away from its getter, which mypy reads as read-only
        self.index.expansion_search = expansion_search  # type: ignore[misc]

    @staticmethod
    def _restore(index_cls: type[Index], path: Path, n: int, view: bool = True) -> Index | None:
        try:
            # the file keeps the graph's connectivity but not the build-time candidate list: pass ours
            index = index_cls.restore(str(path), view=view, expansion_add=EXPANSION_ADD)
        except (RuntimeError, ValueError, OSError) as exc:
            warnings.warn(f"{path}: unreadable search graph ({exc}); rebuilding it", MERWarning, stacklevel=4)
            return None
        if index is None or len(index) != n:
            warnings.warn(f"{path}: search graph does not match the library; rebuilding it", MERWarning, stacklevel=4)
            return None
        return index

    def _grown(self, index_cls: type[Index], m: np.ndarray) -> tuple[Index | None, int]:
        """(a kept graph of the first rows of ``m``, loaded to be extended, its row count), or (None, 0)."""
        assert self.path is not None
        for old in kept_graphs(self.path.parent, f"*x{self.dim}.usearch")[:KEEP]:
            try:
                n0 = int(old.stem.rsplit("-", 1)[1].split("x")[0])
            except (IndexError, ValueError):
                continue
            if 0 < n0 < self.n and old.name == graph_name(m[:n0]):
                index = self._restore(index_cls, old, n0, view=False)
                if index is not None:
                    return index, n0
        return None, 0

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
        for old in kept_graphs(self.path.parent)[KEEP:]:
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
