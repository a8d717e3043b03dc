"""``mer index --ray``: the same per-file prediction, spread over a Ray cluster (Ray Data).

A catalogue of millions of files does not fit one machine's time. This module runs the
prediction step of :func:`mer.library.indexer.index` on Ray Data instead of local worker
processes; planning (what is new, changed, moved) and the database stay on the driver:

1. **resume**: Parquet shards that an earlier, interrupted run wrote but did not merge are
   merged first (:func:`merge_shard`); their files are not predicted again;
2. **plan**: the driver decides what to predict with the single-machine rules;
3. **predict**: ``ray.data.from_items(jobs).map_batches(ShardWriter, batch_size=shard_files,
   compute=ActorPoolStrategy(size=workers))``. Each actor (one CPU) loads the model once; each
   batch of ``shard_files`` files becomes one Parquet shard (one row per file: the ``songs``
   columns of :mod:`mer.library.store` plus ``error``), written under a temporary name and
   renamed, so a shard is whole or absent. The actor returns only the shard's name;
4. **merge**: the driver merges each shard into SQLite in one transaction as it is reported
   and then deletes it. A kill at any moment loses at most the shards in flight.

The shard folder (``--shards``, default ``<db>.shards`` beside the database) and the audio
must be reachable at the same paths from every Ray node (one machine, or a shared filesystem
such as NFS, or object storage mounted as a filesystem). Every node needs the same mer (and
the model, when it is a checkpoint rather than a bundled name); a worker whose weights digest
differs from the driver's fails its files with that reason.

``address``: ``"auto"`` joins a running cluster (``RAY_ADDRESS`` or ``ray start`` on this
machine) and otherwise starts a local Ray instance with ``workers`` CPUs (default: all);
``"local"`` always starts a local instance; anything else (``ray://head:10001``,
``head:6379``) is checked (:func:`check_address`) and passed to :func:`ray.init`. Through Ray
Client (``ray://``) the pipeline runs as one task on the cluster (see :func:`predict_shards`).
An already initialised Ray (a notebook, a test) is used as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import ConfigError, require
from ..infer.schema import KINDS
from .store import SONG_COLUMNS

SHARD_FILES = 32  # files per shard (one Ray Data batch)
SHARD_PREFIX = "shard-"
INFLIGHT = ".inflight-"  # + host-pid: the file a worker is predicting now


def _pyarrow() -> Any:
    require("pyarrow", "indexing on Ray")
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    return pyarrow


def shard_schema() -> Any:
    """The Parquet schema of a shard: the ``songs`` columns (all nullable) and ``error``."""
    pa = _pyarrow()
    arrow = {"text": pa.string(), "real": pa.float64(), "int": pa.int64(), "blob": pa.binary()}
    return pa.schema([pa.field(c, arrow[KINDS.get(c, "text")]) for c in (*SONG_COLUMNS, "error")])


def shard_dir(db: str | os.PathLike, shards: str | os.PathLike | None = None) -> Path:
    """Where a library's shards go: ``shards``, else ``<db>.shards`` beside the database."""
    return Path(shards).resolve() if shards else Path(str(Path(db).resolve()) + ".shards")


def write_shard(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as one Parquet shard in ``folder``, atomically; return its path."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1("\n".join(r["path"] for r in rows).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    final = folder / f"{SHARD_PREFIX}{name}.parquet"
    tmp = folder / f".tmp-{os.getpid()}-{final.name}"
    table = pa.Table.from_pylist([{c: r.get(c) for c in shard_schema().names} for r in rows], schema=shard_schema())
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def read_shard(path: Path) -> list[dict[str, Any]]:
    """The rows of one shard (dicts over :func:`shard_schema`'s columns)."""
    _pyarrow()
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=shard_schema()).to_pylist()


def pending_shards(folder: Path) -> list[Path]:
    """Whole shards in ``folder`` (not yet merged), oldest first; temporaries are ignored."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{SHARD_PREFIX}*.parquet"), key=lambda p: (p.stat().st_mtime_ns, p.name))


class ShardWriter:
    """The Ray Data actor: one model per worker; one batch of jobs in, one shard out.

    ``__call__`` takes a batch (columns ``path``, ``size``, ``mtime_ns``, ``sha1``) and
    returns ``{"shard": [its path], "files": [n]}``; it never raises for a file that fails
    (that file's row carries ``error``)."""

    def __init__(self, model: str, digest: str, folder: str, device: str = "cpu", backend: str = "auto",
                 threads: int = 1, embeddings: bool = True) -> None:
        from ..infer.predictor import Predictor

        self.folder, self.digest, self.embeddings = Path(folder), digest, embeddings
        self.predictor = Predictor(model, device, backend, threads)
        self.wrong_model = (None if self.predictor.bundle.digest == digest else
                            f"this worker's {model} has weights {self.predictor.bundle.digest[:12]}, "
                            f"the driver's {digest[:12]}; install the same mer and model on every node")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        marker = self.folder / f"{INFLIGHT}{socket.gethostname()}-{os.getpid()}"
        rows = []
        for p, s, m, sha in zip(batch["path"], batch["size"], batch["mtime_ns"], batch["sha1"]):
            marker.write_text(str(p), encoding="utf-8", errors="surrogateescape")  # names the file if we die
            rows.append(self._row(str(p), int(s), int(m), sha or None))
        shard = write_shard(self.folder, rows)
        marker.unlink(missing_ok=True)
        return {"shard": [str(shard)], "files": [len(rows)]}

    def _row(self, path: str, size: int, mtime_ns: int, sha1: str | None) -> dict[str, Any]:
        from ..infer.batch import predict_file
        from ..io import file_sha1
        from .writes import file_tags
        from ..infer.rows import library_row

        failed = {"path": path, "size": size, "mtime_ns": mtime_ns}
        if self.wrong_model:
            return {**failed, "error": f"{path}: {self.wrong_model}"}
        res = predict_file(self.predictor, path, {"embeddings": self.embeddings})
        if res.prediction is None:
            return {**failed, "error": res.error or f"{path}: failed"}
        try:
            sha = sha1 or file_sha1(path)
        except OSError as exc:
            return {**failed, "error": f"{path}: cannot be read ({exc.strerror or exc})"}
        return library_row(res.prediction, path, size, mtime_ns, sha, *file_tags(path))


def _ray() -> Any:
    require("ray", "mer index --ray")
    import ray
    import ray.data  # noqa: F401

    return ray


def connect(address: str, workers: int = 0) -> Callable[[], None]:
    """Start or join Ray (see the module docstring); returns what undoes it (a no-op when the
    caller had already initialised Ray)."""
    ray = _ray()
    if ray.is_initialized():
        return lambda: None
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    local = {"address": "local", "num_cpus": workers or os.cpu_count() or 1, **quiet}  # never another cluster
    if address == "auto":
        address = running_cluster() or "local"  # Ray's own "auto" retries a dead cluster's address for minutes
    if address == "local":
        ray.init(**local)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ConfigError(f"--ray {address}: could not join the Ray cluster ({str(exc).splitlines()[0]}); "
                              "check the address and that the head runs the same Ray version") from None
    return ray.shutdown


def running_cluster() -> str | None:
    """The address of a Ray cluster that answers, as ``ray.init(address="auto")`` would find it
    (``RAY_ADDRESS``, else the one ``ray start`` recorded on this machine), or None."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address:
        recorded = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
        with contextlib.suppress(OSError):
            address = recorded.read_text().strip()
    if not address or address in ("auto", "local"):
        return None
    try:
        check_address(address, timeout=2.0)
    except ConfigError:
        return None
    return address


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when ``address`` is no Ray address or nothing listens
    there (``ray://host:port`` or ``host:port``; Ray itself retries for minutes). ``auto`` and
    ``local`` pass; so does an already initialised Ray."""
    if address in ("auto", "local") or ("ray" in sys.modules and sys.modules["ray"].is_initialized()):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address}: give auto, local, ray://HOST:PORT (Ray Client, port 10001) or "
                          "HOST:PORT (the head's GCS, port 6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"--ray {address}: nothing answers at {host}:{port} ({exc.strerror or exc}); start the "
                          "head with `ray start --head` or check the address") from None


def predict_shards(jobs: list[dict[str, Any]], model: str, digest: str, folder: Path, workers: int = 0,
                   shard_files: int = SHARD_FILES, device: str = "cpu", backend: str = "auto",
                   embeddings: bool = True) -> Iterator[tuple[Path, int]]:
    """Run ``jobs`` (dicts: path, size, mtime_ns, sha1) through :class:`ShardWriter` actors on
    the Ray that :func:`connect` opened; yields (shard path, files in it) as shards are written.

    Through Ray Client (``ray://``), whose driver can run neither Ray Data's executor nor a
    streaming task, the pipeline runs in one task on the cluster while this side picks up the
    shards as they appear in the (shared) shard folder."""
    ray = _ray()
    args = (jobs, model, digest, str(folder), workers, shard_files, device, backend, embeddings)
    if not ray.util.client.ray.is_connected():
        for name, n in _pipeline_names(*args):
            yield Path(name), n
        return
    import pyarrow.parquet as pq

    ref = ray.remote(num_cpus=0)(_pipeline_list).remote(*args)
    seen: set[Path] = set()
    while True:
        done, _ = ray.wait([ref], timeout=1.0)
        if done:
            ray.get(ref)  # the pipeline's own error, if it failed
        for shard in pending_shards(folder):
            if shard not in seen:
                seen.add(shard)
                yield shard, pq.read_metadata(shard).num_rows
        if done:
            return


def _pipeline_list(*args: Any) -> list[tuple[str, int]]:
    return list(_pipeline_names(*args))


def _pipeline_names(jobs: list[dict[str, Any]], model: str, digest: str, folder: str, workers: int,
                    shard_files: int, device: str, backend: str, embeddings: bool) -> Iterator[tuple[str, int]]:
    """The Ray Data pipeline of :func:`predict_shards`: (shard path, files) as shards are written."""
    ray = _ray()
    for name in ("ray.data", "ray"):  # the driver reports a failed run itself, in one line
        logging.getLogger(name).setLevel(logging.CRITICAL)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows its own bar, in files
    ctx.print_on_execution_start = False
    cpus = int(ray.cluster_resources().get("CPU", 1))
    size = max(1, min(workers or cpus, -(-len(jobs) // shard_files)))
    ds = ray.data.from_items([{**j, "sha1": j.get("sha1") or ""} for j in jobs])
    # no restarts: a worker that dies (a file that crashes the decoder, memory) ends the run with
    # one line instead of Ray retrying the same batch for ever; the rerun resumes from the shards
    with warnings.catch_warnings():  # Ray 2.60 deprecates these arguments (gone in 2.64, hence the pin <2.64)
        warnings.simplefilter("ignore", DeprecationWarning)
        out = ds.map_batches(ShardWriter, batch_size=shard_files, batch_format="numpy", num_cpus=1,
                             compute=ray.data.ActorPoolStrategy(size=size), max_restarts=0, max_task_retries=0,
                             fn_constructor_kwargs={"model": model, "digest": digest, "folder": folder,
                                                    "device": device, "backend": backend, "threads": 1,
                                                    "embeddings": embeddings})
    for row in out.iter_rows():
        yield str(row["shard"]), int(row["files"])


def merge_shard(conn: sqlite3.Connection, path: Path, resume: bool = False) -> tuple[int, int, float, list[str]]:
    """Merge one shard into the library in one transaction, then delete it. Rows of files that
    changed (size or mtime) since the shard was written are dropped: the next run plans them
    again. ``resume`` (a shard an interrupted run left): rows for which the library already
    holds a newer result (a song row or a failure written after the shard) are dropped too, so
    an old shard never replaces newer work. Returns (rows merged, failures merged, audio
    seconds, errors)."""
    import datetime as dt

    from .writes import commit_results, transaction

    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).replace(microsecond=0).isoformat()
    rows, failures, seconds, errors = [], [], 0.0, []
    for r in read_shard(path):
        try:
            st = os.stat(r["path"])
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns) != (r["size"], r["mtime_ns"]):
            continue
        if resume and _newer_in_library(conn, r, written):
            continue
        if r.get("error"):
            failures.append((r["path"], r["size"], r["mtime_ns"], r["error"]))
            errors.append(r["error"])
        else:
            rows.append({c: r[c] for c in SONG_COLUMNS})
            seconds += float(r["duration"] or 0.0)
    transaction(conn, commit_results, rows, failures)
    path.unlink(missing_ok=True)
    return len(rows), len(failures), seconds, errors


def _newer_in_library(conn: sqlite3.Connection, r: dict[str, Any], written: str) -> bool:
    """Whether the library has a result for ``r``'s file (same size and mtime) made at or after
    ``written`` (UTC ISO seconds, as the library's timestamps)."""
    for sql in ("SELECT indexed_at FROM songs WHERE path=? AND size=? AND mtime_ns=?",
                "SELECT failed_at FROM failures WHERE path=? AND size=? AND mtime_ns=?"):
        row = conn.execute(sql, (r["path"], r["size"], r["mtime_ns"])).fetchone()
        if row is not None and row[0] >= written:
            return True
    return False


def killers(folder: Path) -> list[str]:
    """Files whose worker died while predicting them: named by the in-flight markers of workers
    on this machine that no longer run (markers from other machines cannot be judged and stay).
    Their markers are removed."""
    from ..io import alive

    host, found = socket.gethostname(), []
    for marker in folder.glob(INFLIGHT + "*"):
        name, _, pid = marker.name[len(INFLIGHT):].rpartition("-")
        if name == host and pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(OSError):
                found.append(marker.read_text(encoding="utf-8", errors="surrogateescape"))
                marker.unlink()
    return found


def prepare(folder: Path) -> None:
    """Make the shard folder and check that it takes a file, or one :class:`ConfigError`."""
    probe = folder / f".tmp-{os.getpid()}-probe"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write shards there ({exc.strerror or exc}); give a writable folder, "
                          "reachable from every Ray node, with --shards DIR") from None


def failure_line(exc: BaseException) -> str:
    """One line from a Ray error (the remote cause's last line, colour codes removed)."""
    import re

    cause = getattr(exc, "cause", None) or exc
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[-1] if lines else type(cause).__name__
    return line.split(". ")[0].rstrip(".")[:200]


def clean_temporaries(folder: Path, older_than: float = 3600.0) -> None:
    """Remove what earlier runs' workers left: in-flight markers (no worker of this folder runs
    now: the caller holds its lock) and shard temporaries older than ``older_than`` s."""
    if folder.is_dir():
        for p in folder.glob(INFLIGHT + "*"):
            p.unlink(missing_ok=True)
        cutoff = time.time() - older_than
        for p in folder.glob(".tmp-*"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except OSError:
                pass


def tidy(folder: Path) -> None:
    """Remove the shard folder (and its lock file) when no shard is left in it."""
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= {".lock"}:
        try:
            (folder / ".lock").unlink(missing_ok=True)
            folder.rmdir()
        except OSError:
            pass
