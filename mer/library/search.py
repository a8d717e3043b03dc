"""Nearest songs: exact numpy search behind one small interface an ANN index could implement.

Two kinds of query run on matrices loaded once from the library (and reloaded only when the
database changed):

- **emotion**: the static (valence, arousal) points, ``(N, 2)`` float32 on the canonical
  scale [-1, 1]; nearest by Euclidean distance (0 .. 2*sqrt(2));
- **sound**: the clip embeddings of one model (rows whose ``weights_sha1`` is that model's),
  ``(N, D)`` float32 (D = 200 for the default model), rows L2-normalised; nearest by cosine
  similarity (-1 .. 1, higher is closer).

:class:`VectorIndex` is the interface: ``search(query (D,), k) -> (positions (k,), scores
(k,))``, best first. :class:`ExactIndex` is the brute-force implementation (one matrix-vector
product and an ``argpartition``: ~O(N D)). A library takes any ``index_factory(matrix,
metric) -> VectorIndex``, so an approximate index (HNSW, IVF...) can be plugged in without
touching the rest.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

METRICS = ("euclidean", "cosine")
_CHUNK = 65536


class VectorIndex(Protocol):
    """Nearest rows of a fixed matrix to a query vector."""

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the ``k`` best rows, best first; ``exclude``: positions to skip.
        Scores: Euclidean distance (ascending) or cosine similarity (descending)."""
        ...


IndexFactory = Callable[[np.ndarray, str], VectorIndex]


class ExactIndex:
    """Brute-force :class:`VectorIndex` over a float32 ``(N, D)`` matrix.

    For cosine the rows are normalised **in place** when ``matrix`` already is contiguous
    float32: the index takes the matrix over rather than hold a second copy (800 MB at a million
    songs). The library hands over matrices it built for the index; pass a copy to keep yours."""

    def __init__(self, matrix: np.ndarray, metric: str = "euclidean") -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        if metric == "cosine":
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            m /= np.maximum(norms, 1e-12)
        self.matrix, self.metric = m, metric

    def __len__(self) -> int:
        return len(self.matrix)

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.metric == "cosine":
            q = q / max(float(np.linalg.norm(q)), 1e-12)
            cost = -(self.matrix @ q)  # (N,) negated similarity: smaller is better
        else:
            d = self.matrix - q
            cost = np.einsum("ij,ij->i", d, d)  # (N,) squared distance
        if exclude is not None and len(exclude):
            cost[exclude] = np.inf
        n = len(cost) - (0 if exclude is None else len(np.unique(exclude)))
        k = max(0, min(k, n))
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        top = np.argpartition(cost, k - 1)[:k] if k < len(cost) else np.arange(len(cost))
        top = top[np.argsort(cost[top], kind="stable")]
        scores = -cost[top] if self.metric == "cosine" else np.sqrt(cost[top])
        return top.astype(np.int64), scores.astype(np.float32)


@dataclass
class Points:
    """The emotion plane of a library: ``ids (N,)``, ``va (N, 2)`` float32, ``durations (N,)`` s."""

    ids: np.ndarray
    va: np.ndarray
    durations: np.ndarray
    index: VectorIndex


@dataclass
class Embeddings:
    """The clip embeddings of one model: ``ids (N,)``, ``sha1s`` (N,) file hashes, and the index."""

    digest: str
    ids: np.ndarray
    sha1s: np.ndarray
    dim: int
    index: VectorIndex


def load_points(conn: sqlite3.Connection, factory: IndexFactory = ExactIndex) -> Points:
    """Every song's (valence, arousal) and duration, in id order."""
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute("SELECT id, valence, arousal, duration FROM songs ORDER BY id")
    rows = np.array(cur.fetchall(), dtype=np.float64).reshape(-1, 4)
    va = rows[:, 1:3].astype(np.float32)
    return Points(rows[:, 0].astype(np.int64), va, rows[:, 3].astype(np.float32), factory(va, "euclidean"))


def main_digest(conn: sqlite3.Connection) -> str | None:
    """The weights digest most songs with an embedding were indexed with (None: no embeddings)."""
    row = conn.execute("SELECT weights_sha1, COUNT(*) AS n FROM songs WHERE embedding IS NOT NULL "
                       "GROUP BY weights_sha1 ORDER BY n DESC LIMIT 1").fetchone()
    return None if row is None else row[0]


def load_embeddings(conn: sqlite3.Connection, digest: str, factory: IndexFactory = ExactIndex) -> Embeddings:
    """The float16 clip embeddings of model ``digest`` as one float32 matrix (read in chunks,
    in one read transaction: rows an indexer commits meanwhile wait for the next load)."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        return _load_embeddings(conn, digest, factory)
    finally:
        if own:
            conn.execute("COMMIT")


def _load_embeddings(conn: sqlite3.Connection, digest: str, factory: IndexFactory) -> Embeddings:
    dim_row = conn.execute("SELECT dim, COUNT(*) AS n FROM songs WHERE weights_sha1=? AND embedding IS NOT NULL "
                           "GROUP BY dim ORDER BY n DESC LIMIT 1", (digest,)).fetchone()
    if dim_row is None:
        return Embeddings(digest, np.zeros(0, np.int64), np.zeros(0, object), 0,
                          factory(np.zeros((0, 1), np.float32), "cosine"))
    dim, n = int(dim_row[0]), int(dim_row[1])
    matrix = np.empty((n, dim), np.float32)
    ids = np.empty(n, np.int64)
    sha1s: list[str] = []
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute("SELECT id, sha1, embedding FROM songs WHERE weights_sha1=? AND dim=? AND embedding IS NOT NULL "
                "ORDER BY id", (digest, dim))
    at = 0
    while chunk := cur.fetchmany(_CHUNK):
        m = len(chunk)
        ids[at:at + m] = [r[0] for r in chunk]
        sha1s += [r[1] for r in chunk]
        matrix[at:at + m] = np.frombuffer(b"".join(r[2] for r in chunk), dtype="<f2").reshape(m, dim)
        at += m
    matrix, ids = matrix[:at], ids[:at]
    return Embeddings(digest, ids, np.array(sha1s, dtype=object), dim, factory(matrix, "cosine"))
