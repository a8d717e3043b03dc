"""How ``mer index`` scales: 1 vs 2 workers, on this machine and on Ray, and what 1M previews cost.

Measures, on the first ``--files`` (default 200) of the 4Q dev clips (30 s mp3 each):

- single machine (:func:`mer.infer.batch.run_batch` worker processes), ``-j 1`` and ``-j 2``;
- Ray Data on a local ``ray.init(num_cpus=2)``, 1 and 2 actors (``mer index --ray``), each run
  on a fresh database; the Ray start itself is timed apart (paid once per job);
- the driver's merge rate: reading a 32-row Parquet shard and committing it to SQLite,
  rows/s (it bounds how many workers one driver can feed).

Then the arithmetic for 1,000,000 previews of 30 s: per-worker rate (Ray, 1 actor) x workers
x the 2-worker efficiency measured here, for a few cluster sizes, beside the driver bound.

Usage (from the repository root; needs the ray extra)::

    python -m benchmarks.index_scaling --data ../shared/data [--clips DIR] [--files 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._data import data_parser, data_root
from mer.library import Library, cluster
from mer.library.store import connect
from mer.library.writes import commit_results, transaction

PREVIEWS = 1_000_000


def run(files: list[str], tmp: Path, name: str, **kw: object) -> tuple[float, float]:
    """(wall seconds, audio seconds) of indexing ``files`` into a fresh database."""
    with Library(tmp / f"{name}.sqlite") as lib:
        stats = lib.index(files, progress=False, **kw)
    assert stats.predicted == len(files) and stats.failed == 0, stats.errors[:3]
    return stats.seconds, stats.audio_seconds


def merge_rate(db: Path, tmp: Path, shards: int = 60) -> float:
    """Rows/s of shard read + SQLite commit on the driver (rows copied from ``db``, new paths)."""
    conn = connect(db)
    base = [dict(r) for r in conn.execute("SELECT * FROM songs LIMIT 32")]
    conn.close()
    folder = tmp / "merge.shards"
    paths = []
    for s in range(shards):
        rows = [{**{k: v for k, v in r.items() if k != "id"}, "path": f"/bench/{s}/{i}.mp3"} for i, r in enumerate(base)]
        paths.append(cluster.write_shard(folder, rows))
    target = connect(tmp / "merge.sqlite", create=True)
    t0 = time.perf_counter()
    for p in paths:
        rows = [{k: v for k, v in r.items() if k != "error"} for r in cluster.read_shard(p)]
        transaction(target, commit_results, rows, [])
    return shards * len(base) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 parents=[data_parser()])
    ap.add_argument("--clips", type=Path, default=None, help="the clips' folder (default: DATA/4q-dev)")
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args(argv)
    args.clips = args.clips or data_root(args) / "4q-dev"
    files = sorted(str(p) for p in args.clips.rglob("*.mp3"))[: args.files]
    if not files:
        sys.exit(f"no mp3 files under {args.clips}")
    import ray

    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for j in (1, 2):
            results.append((f"single machine, -j {j}", j, *run(files, tmp, f"local{j}", workers=j)))
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - t0
        try:
            for j in (1, 2):
                results.append((f"Ray Data, {j} actor{'s' * (j > 1)}", j, *run(files, tmp, f"ray{j}", ray="auto",
                                                                              workers=j)))
        finally:
            ray.shutdown()
        merge = merge_rate(tmp / "local1.sqlite", tmp)

    print(f"### Index scaling: {len(files)} clips of 30 s, default model, {os.cpu_count()} cores\n")
    print("| run | workers | wall (s) | files/s | x real time | speed-up vs 1 worker |")
    print("|---|---|---|---|---|---|")
    one = {}
    for name, j, wall, audio in results:
        kind = name.split(",")[0]
        one.setdefault(kind, wall)
        print(f"| {name} | {j} | {wall:.1f} | {len(files) / wall:.1f} | {audio / wall:.0f}x | "
              f"{one[kind] / wall:.2f}x |")
    print(f"\nRay start (`ray.init(num_cpus=2)`, once per job): {ray_start:.1f} s. "
          f"Driver merge (read a 32-row shard + SQLite commit): {merge:,.0f} rows/s.\n")

    r1 = len(files) / results[2][2]  # Ray, 1 actor: files/s per worker
    eff = (len(files) / results[3][2]) / (2 * r1)
    print(f"### 1,000,000 previews of 30 s: per worker {r1:.1f} files/s (Ray, 1 actor), 2-worker efficiency "
          f"{eff:.0%}\n")
    print("| cluster | workers | files/s | time for 1M |\n|---|---|---|---|")
    for label, workers in (("this machine", 2), ("1 x 16 cores", 16), ("10 x 16 cores", 160),
                           ("50 x 16 cores", 800)):
        rate = r1 * workers * (eff if workers > 1 else 1.0)
        hours = PREVIEWS / rate / 3600
        bound = " (driver merge bound)" if rate > merge else ""
        print(f"| {label} | {workers} | {min(rate, merge):,.0f}{bound} | "
              f"{max(hours, PREVIEWS / merge / 3600):.1f} h |")
    print(f"\nOne driver merges at most {merge:,.0f} rows/s = {PREVIEWS / merge / 60:.0f} min for 1M rows; "
          "beyond that, more workers do not help.")


if __name__ == "__main__":
    main()
