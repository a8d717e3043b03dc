"""Speed and size of the music library (``mer index`` / ``mer search``), as markdown tables.

Measures:

- index throughput on the 4Q dev clips (``DATA/4q-dev``, 600 x 30 s mp3): first run
  (everything predicted, one worker process per core) and an incremental rerun (nothing
  changed), in files/s and x real time (seconds of audio per wall-clock second); plus the
  top-20 quadrant shares of ``--mood calm`` (Q4) and ``--mood angry`` (Q2);
- database size per 1,000 songs (the real 600-song library, and the synthetic one below);
- search latency on a synthetic library of ``--rows`` (default 1,000,000) songs with random
  (valence, arousal) and 200-d float16 embeddings drawn from a Gaussian with the mean and
  covariance of the real 600 clips' embeddings (isotropic random ones when the clips are
  absent), written with ``executemany`` (no prediction): the one-off load of the matrices,
  then p50/p95 over ``--queries`` queries of ``search_va`` and ``search_like`` (embedding
  given, k = 20, including fetching the 20 rows' details), exact and approximate
  (``--index ann``: the first process builds the HNSW graph, the next loads it, and one after
  the library grew by 1% extends it), with the approximate search's recall@10 against exact;
- the worst case for the approximate index: the same number of isotropic random rows (no
  structure at all), in memory: build time, latency, recall@10.

Usage (from the repository root)::

    python -m benchmarks.library --data ../shared/data [--clips DIR] [--rows 1000000] [--queries 50] [--no-worst-case]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks._data import data_parser, data_root
from mer.library import Library
from mer.library.store import connect, now


def index_bench(clips: Path, tmp: Path) -> tuple[list[str], float]:
    db = tmp / "4q.sqlite"
    rows = ["| run | files predicted | wall (s) | files/s | x real time |", "|---|---|---|---|---|"]
    with Library(db) as lib:
        for name in ("first run", "incremental rerun"):
            s = lib.index(clips, progress=False)
            files = s.found
            real = f"{s.audio_seconds / s.seconds:.0f}x" if s.audio_seconds else "n/a (nothing predicted)"
            rows.append(f"| {name} | {s.predicted} of {files} | {s.seconds:.2f} | {files / s.seconds:,.0f} | {real} |")
        shares = []
        for word, want in (("calm", "Q4"), ("angry", "Q2")):
            found = lib.search_mood(word, k=20)
            share = sum(Path(f["path"]).parent.name == want for f in found) / len(found)
            shares.append(f"| --mood {word} | {want} | {share:.0%} ({round(share * len(found))}/{len(found)}) |")
        n = len(lib)
    lib.close()
    size = db.stat().st_size + sum(p.stat().st_size for p in tmp.glob("4q.sqlite-wal"))
    print("### Index throughput (600 4Q clips of 30 s, default model, one worker per core)\n")
    print("\n".join(rows) + "\n")
    print("### Mood search on the 4Q clips: share of the top 20 in the expected quadrant\n")
    print("| query | quadrant | share |\n|---|---|---|\n" + "\n".join(shares) + "\n")
    return [f"| real library ({n} songs, curves and tags) | {size / n * 1000 / 2**20:.2f} MiB |"], size / n


Sampler = Callable[[np.random.Generator, int], np.ndarray]


def isotropic(rng: np.random.Generator, m: int, dim: int = 200) -> np.ndarray:
    """Random embeddings, every direction alike: the worst case for an approximate index."""
    return rng.standard_normal((m, dim)).astype(np.float32)


def like_real(db: Path) -> Sampler | None:
    """Embeddings drawn from a Gaussian with the mean and covariance of a real library's
    (the 600 4Q clips): their effective rank is low (10 directions hold ~80% of the variance)."""
    if not db.is_file():
        return None
    conn = connect(db)
    e = np.array([np.frombuffer(r[0], "<f2") for r in conn.execute("SELECT embedding FROM songs "
                                                                    "WHERE embedding IS NOT NULL")], np.float64)
    conn.close()
    mu, chol = e.mean(0), np.linalg.cholesky(np.cov(e.T) + 1e-6 * np.eye(e.shape[1]))
    return lambda rng, m: (mu + rng.standard_normal((m, len(mu))) @ chol.T).astype(np.float32)


def build_synthetic(db: Path, n: int, sample: Sampler, seed: int = 0, start: int = 0) -> float:
    """Write ``n`` synthetic songs (numbered from ``start``, so a second call appends)."""
    dim = 200
    rng = np.random.default_rng(seed)
    conn = connect(db, create=True)
    conn.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    tags = json.dumps({"rock": 0.3, "pop": 0.2, "indie": 0.1, "electronic": 0.1, "jazz": 0.05})
    stamp = now()
    chunk = 100_000
    for at in range(start, start + n, chunk):
        m = min(chunk, start + n - at)
        va = rng.uniform(-1, 1, (m, 2)).round(4)
        emb = sample(rng, m).astype("<f2")
        curve = rng.uniform(-1, 1, (m, 60, 2)).astype("<f2")  # a 30 s 2 Hz curve
        dur = rng.uniform(120, 360, m).round(3)
        q = np.where(va[:, 0] >= 0, np.where(va[:, 1] >= 0, "Q1", "Q4"), np.where(va[:, 1] >= 0, "Q2", "Q3"))
        rows = ((f"/music/{(at + i) // 1000}/song{at + i}.mp3", 5_000_000 + i, 1, f"{at + i:040x}", float(dur[i]),
                 "default", "2", "w" * 40, float(va[i, 0]), float(va[i, 1]), str(q[i]), 0.25, 0.25, 0.25, 0.25,
                 curve[i].tobytes(), tags, emb[i].tobytes(), dim, stamp) for i in range(m))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO songs (path, size, mtime_ns, sha1, duration, model, model_version, "
                         "weights_sha1, valence, arousal, quadrant, p_q1, p_q2, p_q3, p_q4, curve, tags, embedding, "
                         "dim, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def timed(fn: Callable[[], object], queries: int) -> list[float]:
    times = []
    for _ in range(queries):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def search_bench(tmp: Path, n: int, queries: int, real_db: Path) -> list[str]:
    db = tmp / "synthetic.sqlite"
    sample = like_real(real_db)
    kind = "drawn like the 4Q clips' embeddings (mean, covariance)" if sample else "random (isotropic)"
    sample = sample or isotropic
    built = build_synthetic(db, n, sample)
    size = db.stat().st_size
    rng = np.random.default_rng(1)
    out = []
    with Library(db, index="exact") as lib:
        t0 = time.perf_counter()
        lib.search_va(0, 0, k=20)
        load_va = time.perf_counter() - t0
        t0 = time.perf_counter()
        lib.search_like(sample(rng, 1)[0], k=20)
        load_emb = time.perf_counter() - t0
        rows = ["| query | load once (s) | p50 (ms) | p95 (ms) |", "|---|---|---|---|"]
        for name, load, fn in (
                ("search_va (Euclidean on the plane)", load_va,
                 lambda: lib.search_va(*rng.uniform(-1, 1, 2), k=20)),
                ("search_mood", 0.0, lambda: lib.search_mood("calm", k=20)),
                ("search_like, exact (cosine, 200-d)", load_emb,
                 lambda: lib.search_like(sample(rng, 1)[0], k=20))):
            times = timed(fn, queries)
            rows.append(f"| {name} | {load:.1f} | {pct(times, 50):.1f} | {pct(times, 95):.1f} |")
        probe = sample(np.random.default_rng(2), queries)
        truth = [[s["id"] for s in lib.search_like(q, k=10)] for q in probe]

    def ann_row(attempt: str) -> str:
        """One process's approximate search: first query (loads, builds or extends), latency, recall."""
        with Library(db, index="ann") as lib:
            t0 = time.perf_counter()
            lib.search_like(sample(rng, 1)[0], k=20)
            load = time.perf_counter() - t0
            times = timed(lambda: lib.search_like(sample(rng, 1)[0], k=20), queries)
            got = [[s["id"] for s in lib.search_like(q, k=10)] for q in probe]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)])
        return (f"| search_like, {attempt}; recall@10 {recall:.3f} | {load:.1f} | {pct(times, 50):.2f} | "
                f"{pct(times, 95):.2f} |")

    rows += [ann_row("ann, first (builds and keeps the graph)"), ann_row("ann, next process (graph from DB.ann/)")]
    grow = max(1, n // 100)  # the library grows by 1%: the kept graph is extended, not rebuilt
    build_synthetic(db, grow, sample, seed=5, start=n)
    with Library(db, index="exact") as lib:
        truth = [[s["id"] for s in lib.search_like(q, k=10)] for q in probe]
    rows.append(ann_row(f"ann, after {grow:,} more songs (extends the kept graph)"))
    print(f"### Search latency, {n:,} synthetic songs, embeddings {kind} (k = 20, {queries} queries; "
          f"table built in {built:.0f} s)\n")
    print("\n".join(rows) + "\n")
    out.append(f"| synthetic ({n:,} songs, 60-step curves, 200-d embeddings) | {size / n * 1000 / 2**20:.2f} MiB |")
    return out


def isotropic_ann(n: int, queries: int) -> None:
    """The worst case, in memory: the ANN graph on random isotropic 200-d rows vs exact."""
    from mer.library.ann import AnnIndex
    from mer.library.search import ExactIndex

    rng = np.random.default_rng(3)
    x = isotropic(rng, n)
    t0 = time.perf_counter()
    approx = AnnIndex(x)
    build = time.perf_counter() - t0
    exact = ExactIndex(x, "cosine")
    probe = isotropic(rng, queries)
    recall = np.mean([len(set(approx.search(q, 10)[0]) & set(exact.search(q, 10)[0])) / 10 for q in probe])
    times = timed(lambda: approx.search(isotropic(rng, 1)[0], 20), queries)
    print(f"### Worst case: ANN on {n:,} random isotropic 200-d rows (no structure), in memory\n")
    print("| index | build (s) | p50 (ms) | recall@10 |\n|---|---|---|---|")
    print(f"| HNSW (usearch, M=16, ef=128) | {build:.0f} | {pct(times, 50):.2f} | {recall:.3f} |\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--clips", default=None, help="the clips' folder (default: DATA/4q-dev)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--no-worst-case", action="store_true", help="skip the ANN run on isotropic random rows")
    args = ap.parse_args(argv)
    args.clips = args.clips or str(data_root(args) / "4q-dev")
    sizes = []
    with tempfile.TemporaryDirectory(prefix="mer-library-bench-") as d:
        tmp = Path(d)
        if Path(args.clips).is_dir():
            real, _ = index_bench(Path(args.clips), tmp)
            sizes += real
        else:
            print(f"(index throughput skipped: {args.clips} not found)\n")
        sizes += search_bench(tmp, args.rows, args.queries, tmp / "4q.sqlite")
        if not args.no_worst_case:
            isotropic_ann(args.rows, args.queries)
    print("### Database size per 1,000 songs\n")
    print("| library | size per 1,000 songs |\n|---|---|\n" + "\n".join(sizes))


if __name__ == "__main__":
    main()
