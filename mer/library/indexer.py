"""``mer index``: predict a music collection into the library database, incrementally.

For every audio file under the given folders (absolute paths, resolved through links):

- **unchanged** (same size and mtime as its row, same model digest): skipped, not even read;
- **touched** (size equal, mtime different, SHA-1 of the bytes equal): only its mtime is updated;
- **moved / renamed / copied**: a new path whose bytes (SHA-1) equal a row of the same model
  takes that row over (moved: the old path is gone; the row keeps its id) or a copy of it,
  without predicting;
- **new, changed, or predicted by another model** (weights digest): predicted again through
  :func:`mer.infer.predictor.run_batch` (one worker process per core, results in input order,
  ``embeddings=True`` for models with per-step embeddings);
- **failed before** (a ``failures`` row with the same size and mtime): skipped unless
  ``retry_failed``; a file that fails is recorded there with its one-line error.

Results are committed every ``commit_every`` files (and at least every ``COMMIT_SECONDS``)
in one transaction each, so a kill at any moment keeps what was committed and leaves no half
row; a rerun picks up the rest. ``prune`` forgets rows (and failures) under the indexed
folders whose files are gone. SHA-1s are computed streaming (1 MiB blocks), up front only for
files whose size matches an existing row (the only ones that can be moves or copies), the
rest while the workers predict.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError, MERError, MERWarning
from ..bundle import Bundle, bundled_models
from . import cluster
from ..infer.rows import library_row
from .store import now
from ..io import file_sha1
from .writes import commit_results, file_tags, record_failures, transaction

COMMIT_EVERY = 20  # files per transaction
COMMIT_SECONDS = 10.0  # and at least this often (s) while results arrive


@dataclass
class IndexStats:
    """What one :func:`index` run did (counts of files; times in seconds)."""

    found: int = 0  # audio files under the given paths
    predicted: int = 0  # sent through the model: new + changed + remodelled + retried
    new: int = 0
    changed: int = 0  # bytes changed since their row
    remodelled: int = 0  # their row came from other weights
    retried: int = 0  # failed before, tried again (retry_failed or the file changed)
    unchanged: int = 0
    touched: int = 0  # mtime changed, bytes the same
    moved: int = 0
    copied: int = 0
    failed: int = 0  # failed in this run
    skipped_failed: int = 0  # failed before and unchanged: not retried
    pruned: int = 0
    resumed: int = 0  # songs merged first from an interrupted Ray run's shards (then counted as unchanged too)
    resumed_failed: int = 0  # failures merged from those shards (their errors are in ``errors``)
    audio_seconds: float = 0.0  # duration of the audio predicted in this run
    seconds: float = 0.0  # wall time of the run
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    path: str
    size: int
    mtime_ns: int
    sha1: str | None
    reason: str  # new | changed | remodelled | retried


def model_spec(bundle: Bundle) -> str:
    """How the library remembers its model: the bundled name, else the checkpoint's absolute stem."""
    return bundle.name if bundle.name in bundled_models() else str(Path(bundle.stem).resolve())


def scan(paths: Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """(absolute audio files, absolute roots) under ``paths`` (files and folders, recursive)."""
    from ..audio import find_audio

    roots = [str(Path(p).resolve()) for p in paths]
    files = find_audio(roots)
    seen, out = set(), []
    for f in files:
        s = str(Path(f).resolve())
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out, roots


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _plan(conn: sqlite3.Connection, files: list[str], digest: str, retry_failed: bool,
          stats: IndexStats) -> tuple[list[_Job], list[tuple[str, Any]]]:
    """Jobs to predict, and row edits (moves, copies, touches) to apply without predicting."""
    rows = {r["path"]: r for r in conn.execute(
        "SELECT id, path, size, mtime_ns, sha1, weights_sha1 FROM songs")}
    failures = {r["path"]: r for r in conn.execute("SELECT path, size, mtime_ns FROM failures")}
    present = set(files)
    sizes = {r["size"] for r in rows.values() if r["weights_sha1"] == digest}
    by_hash: dict[str, list[Any]] = {}
    for r in rows.values():
        if r["weights_sha1"] == digest:
            by_hash.setdefault(r["sha1"], []).append(r)
    jobs: list[_Job] = []
    edits: list[tuple[str, Any]] = []  # (kind, that kind's SQL parameters): see _apply
    taken: set[int] = set()
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            edits.append(("fail", (path, None, None, f"{path}: cannot be read ({exc.strerror})")))
            continue
        size, mtime = st.st_size, st.st_mtime_ns
        row = rows.get(path)
        if row is not None:
            if row["size"] == size and row["mtime_ns"] == mtime:
                if row["weights_sha1"] == digest:
                    stats.unchanged += 1
                else:
                    jobs.append(_Job(path, size, mtime, row["sha1"], "remodelled"))
                continue
            sha = file_sha1(path) if row["size"] == size else None
            if sha == row["sha1"] and row["weights_sha1"] == digest:
                stats.touched += 1
                edits.append(("touch", (mtime, row["id"])))
            else:
                jobs.append(_Job(path, size, mtime, sha, "changed"))
            continue
        failed = failures.get(path)
        if failed is not None and failed["size"] == size and failed["mtime_ns"] == mtime and not retry_failed:
            stats.skipped_failed += 1
            continue
        reason = "retried" if failed is not None else "new"
        sha = file_sha1(path) if size in sizes else None
        twins = by_hash.get(sha, []) if sha else []
        gone = [r for r in twins if r["path"] not in present and r["id"] not in taken and not os.path.exists(r["path"])]
        if gone:
            taken.add(gone[0]["id"])
            stats.moved += 1
            edits.append(("move", (path, size, mtime, gone[0]["id"])))
        elif twins:
            stats.copied += 1
            edits.append(("copy", (path, size, mtime, twins[0]["id"])))
        else:
            jobs.append(_Job(path, size, mtime, sha, reason))
    return jobs, edits


def _apply(conn: sqlite3.Connection, edits: list[tuple[str, Any]]) -> None:
    for kind, a in edits:
        if kind == "touch":
            conn.execute("UPDATE songs SET mtime_ns=? WHERE id=?", a)
        elif kind == "move":
            conn.execute("UPDATE songs SET path=?, size=?, mtime_ns=? WHERE id=?", a)
            conn.execute("DELETE FROM failures WHERE path=?", (a[0],))
        elif kind == "copy":
            cols = "sha1, duration, model, model_version, weights_sha1, valence, arousal, quadrant, p_q1, p_q2, " \
                   "p_q3, p_q4, curve, tags, embedding, dim, artist, title"
            conn.execute(f"INSERT INTO songs (path, size, mtime_ns, indexed_at, {cols}) "
                         f"SELECT ?, ?, ?, ?, {cols} FROM songs WHERE id=?", (a[0], a[1], a[2], now(), a[3]))
            conn.execute("DELETE FROM failures WHERE path=?", (a[0],))
        elif kind == "fail":
            record_failures(conn, [a])


def _prune(conn: sqlite3.Connection, files: list[str], roots: list[str]) -> int:
    present = set(files)
    gone = [(r[0],) for r in conn.execute("SELECT path FROM songs") if _under(r[0], roots) and r[0] not in present]
    gone_f = [(r[0],) for r in conn.execute("SELECT path FROM failures") if _under(r[0], roots) and r[0] not in present]

    def drop(c: sqlite3.Connection) -> None:
        c.executemany("DELETE FROM songs WHERE path=?", gone)
        c.executemany("DELETE FROM failures WHERE path=?", gone_f)

    transaction(conn, drop)
    return len(gone)


@dataclass(frozen=True)
class IndexOptions:
    """How an index run works: everything but what to index and into which library.

    ``workers``: prediction processes (0: one per core), or Ray actors (0: one per CPU of the
    cluster). ``ray``: predict on Ray instead (an address for :func:`mer.library.cluster.connect`),
    through Parquet shards in ``shards`` (default ``<db>.shards``) of ``shard_files`` files each.
    ``commit_every``: files per transaction."""

    model: "str | Bundle" = "default"
    workers: int = 0
    prune: bool = False
    retry_failed: bool = False
    progress: bool = True
    device: str = "auto"
    backend: str = "auto"
    commit_every: int = COMMIT_EVERY
    ray: str | None = None
    shards: str | os.PathLike | None = None
    shard_files: int | None = None


def index(conn: sqlite3.Connection, paths: Iterable[str | os.PathLike], opts: IndexOptions = IndexOptions()
          ) -> IndexStats:
    """Bring the library on ``conn`` up to date with the audio under ``paths`` (see the module
    docstring) as ``opts`` says; returns what was done."""
    from ..infer.backends import choose_backend

    t0 = time.perf_counter()
    stats = IndexStats()
    bundle = Bundle.resolve(opts.model)
    choose_backend(bundle, opts.device, opts.backend)  # a bad model/device fails before any file is read
    if opts.ray is None and (opts.shards is not None or opts.shard_files is not None):
        raise ConfigError("--shards and --shard-files go with --ray ADDRESS")
    if opts.shard_files is not None and opts.shard_files < 1:
        raise ConfigError(f"--shard-files must be 1 or more (got {opts.shard_files})")
    db_file = conn.execute("PRAGMA database_list").fetchone()[2]
    folder = cluster.shard_dir(db_file, opts.shards)
    with contextlib.ExitStack() as held:
        if opts.ray is not None or any(folder.glob("shard-*.parquet")):
            held.enter_context(_open_shards(conn, folder, opts.ray, opts.retry_failed, stats))
        _index_files(conn, paths, bundle, opts, folder, stats)
    if opts.ray is not None or folder.is_dir():
        cluster.tidy(folder)
    stats.seconds = time.perf_counter() - t0
    return stats


@contextlib.contextmanager
def _open_shards(conn: sqlite3.Connection, folder: Path, ray: str | None, retry_failed: bool,
                 stats: IndexStats) -> Iterator[None]:
    """Hold the shard folder (one index run at a time uses it) and merge what an interrupted
    Ray run left there (its failures' errors are reported unless they are to be retried); for
    a Ray run, check the address and that the folder takes files."""
    from ..io import run_lock

    if ray is not None:
        cluster.check_address(ray)
        cluster.prepare(folder)
    elif importlib.util.find_spec("pyarrow") is None:
        warnings.warn(f"{folder}: shards of an interrupted `mer index --ray` wait there; install the ray extra to "
                      "merge them (pip install 'mer-toolkit[ray]') or delete the folder", MERWarning, stacklevel=4)
        yield
        return
    with run_lock(folder, "shard"):
        cluster.clean_temporaries(folder)
        for shard in cluster.pending_shards(folder):  # an interrupted run's work: merged, not redone
            merged, failed, _, errors = cluster.merge_shard(conn, shard, resume=True)
            stats.resumed += merged
            stats.resumed_failed += failed
            stats.errors += [] if retry_failed else errors
        yield


def _index_files(conn: sqlite3.Connection, paths: Iterable[str | os.PathLike], bundle: Bundle, opts: IndexOptions,
                 folder: Path, stats: IndexStats) -> None:
    """Scan, plan, apply the edits, prune, and predict what is left (locally or on Ray)."""
    files, roots = scan(paths)
    stats.found = len(files)
    jobs, edits = _plan(conn, files, bundle.digest, opts.retry_failed, stats)
    transaction(conn, _apply, edits)
    conn.execute("INSERT INTO meta(key, value) VALUES ('model', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                 (model_spec(bundle),))
    if opts.prune:
        stats.pruned = _prune(conn, files, roots)
    for j in jobs:
        setattr(stats, j.reason, getattr(stats, j.reason) + 1)
    stats.predicted = len(jobs)
    if jobs and opts.ray is not None:
        _predict_on_ray(conn, jobs, bundle, opts, opts.ray, folder, stats)
    elif jobs:
        _predict(conn, jobs, bundle, opts, stats)


def _predict(conn: sqlite3.Connection, jobs: list[_Job], bundle: Bundle, opts: IndexOptions,
             stats: IndexStats) -> None:
    from tqdm import tqdm

    from ..infer.predictor import run_batch

    by_path = {j.path: j for j in jobs}
    rows: list[dict[str, Any]] = []
    failures: list[tuple] = []
    last = time.monotonic()

    def flush(c: sqlite3.Connection) -> None:
        commit_results(c, rows, failures)

    embeddings = bundle.meta.capabilities.step_embeddings
    bar = tqdm(total=len(jobs), unit="file", desc="index", file=sys.stderr, disable=not opts.progress, leave=False)
    try:
        for res in run_batch(bundle, [j.path for j in jobs], opts.device, opts.backend, opts.workers,
                             {"embeddings": embeddings}):
            bar.update(1)
            job = by_path[res.path]
            if res.prediction is None:
                stats.failed += 1
                stats.errors.append(res.error or f"{res.path}: failed")
                failures.append((job.path, job.size, job.mtime_ns, res.error or "failed"))
            else:
                try:
                    sha = job.sha1 or file_sha1(job.path)
                except OSError as exc:
                    failures.append((job.path, job.size, job.mtime_ns, f"{job.path}: cannot be read ({exc.strerror})"))
                    stats.failed += 1
                    continue
                stats.audio_seconds += res.prediction.duration
                rows.append(library_row(res.prediction, job.path, job.size, job.mtime_ns, sha,
                                              *file_tags(job.path)))
            if len(rows) + len(failures) >= opts.commit_every or time.monotonic() - last > COMMIT_SECONDS:
                transaction(conn, flush)
                rows.clear()
                failures.clear()
                last = time.monotonic()
        if rows or failures:
            transaction(conn, flush)
    finally:
        bar.close()


def _predict_on_ray(conn: sqlite3.Connection, jobs: list[_Job], bundle: Bundle, opts: IndexOptions, address: str,
                    folder: Path, stats: IndexStats) -> None:
    """Predict ``jobs`` on Ray (:mod:`mer.library.cluster`), merging each shard as it is written."""
    from tqdm import tqdm

    stop = cluster.connect(address, opts.workers)  # one line, not an ImportError, when the extra is missing
    import ray
    bar = tqdm(total=len(jobs), unit="file", desc="index (ray)", file=sys.stderr, disable=not opts.progress,
               leave=False)
    try:
        todo = [{"path": j.path, "size": j.size, "mtime_ns": j.mtime_ns, "sha1": j.sha1} for j in jobs]
        for shard, n in cluster.predict_shards(todo, model_spec(bundle), bundle.digest, folder, opts.workers,
                                               opts.shard_files or cluster.SHARD_FILES, opts.device, opts.backend,
                                               bundle.meta.capabilities.step_embeddings):
            _, failed, seconds, errors = cluster.merge_shard(conn, shard)
            stats.failed += failed
            stats.errors += errors
            stats.audio_seconds += seconds
            bar.update(n)
    except ray.exceptions.RayError as exc:
        by_path = {j.path: j for j in jobs}
        dead = [by_path[p] for p in cluster.killers(folder) if p in by_path]
        why = "the Ray worker predicting it died (out of memory, or a decoder crash); --retry-failed tries it again"
        transaction(conn, commit_results, [], [(j.path, j.size, j.mtime_ns, f"{j.path}: {why}") for j in dead])
        named = f"; recorded as failed: {', '.join(j.path for j in dead)}" if dead else ""
        raise MERError(f"the Ray run stopped ({cluster.failure_line(exc)}){named}; {bar.n} of {len(jobs)} files "
                       "were merged, and a rerun of the same command goes on from there") from None
    finally:
        bar.close()
        stop()
