"""How results are written into a library, by every writer (the indexer on one machine, the
merge of Ray shards): one transaction per batch, predicted rows and failures recorded together,
and the facts of a file each row keeps (its SHA-1, its artist and title tags).

Below :mod:`mer.library.indexer` and :mod:`mer.library.cluster`, which both use it; it imports
only :mod:`mer.library.store`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .store import now, upsert_songs

def file_tags(path: str) -> tuple[str | None, str | None]:
    """(artist, title) from the file's tags when PyAV is installed and they are there."""
    try:
        import av
    except ImportError:
        return None, None
    try:
        with av.open(path, metadata_errors="ignore") as c:
            meta = {k.lower(): v for k, v in (c.metadata or {}).items()}
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None, None
    return (meta.get("artist") or None), (meta.get("title") or None)


def transaction(conn: sqlite3.Connection, fn: Any, *args: Any) -> None:
    """``fn(conn, *args)`` in one write transaction (rolled back if it raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def record_failures(conn: sqlite3.Connection, failures: list[tuple]) -> None:
    conn.executemany("INSERT INTO failures (path, size, mtime_ns, error, failed_at) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
                     "error=excluded.error, failed_at=excluded.failed_at", [(*f, now()) for f in failures])


def commit_results(conn: sqlite3.Connection, rows: list[dict[str, Any]], failures: list[tuple]) -> None:
    """Write predicted ``rows`` (replacing their paths' rows and failures) and ``failures``
    ((path, size, mtime_ns, error): their stale rows go). Call inside a transaction."""
    upsert_songs(conn, rows)
    conn.executemany("DELETE FROM failures WHERE path=?", [(r["path"],) for r in rows])
    conn.executemany("DELETE FROM songs WHERE path=?", [(f[0],) for f in failures])
    record_failures(conn, failures)
