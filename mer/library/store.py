"""The SQLite file behind a music library: schema, opening, migrations, row encoding.

One database file (``music.sqlite``) in WAL mode, so searches read while ``mer index``
writes; every write happens in a transaction, so a kill at any moment leaves the last
committed state. ``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`; :func:`migrate`
brings an older file up to date (and refuses one written by a newer mer).

A library SQLite cannot write to (a read-only file, folder or mount, as on a shared music
disk) is still searched: :func:`connect` opens it read-only (``mode=ro``; ``immutable=1``
where its folder cannot take the ``-shm`` file WAL readers need), and a writer
(``create=True``, ``mer index``) gets one line saying the library is read-only.

Schema (version 1)::

    songs      one row per audio file
      id            INTEGER PRIMARY KEY   stable while the row lives (the web page serves audio by id)
      path          TEXT UNIQUE           absolute path
      size          INTEGER               bytes
      mtime_ns      INTEGER               modification time, ns since the epoch
      sha1          TEXT                  SHA-1 of the file's bytes (recognises moved files)
      duration      REAL                  seconds
      model, model_version, weights_sha1  TEXT   the model that predicted it (name, version, digest)
      valence, arousal REAL               static values, canonical scale [-1, 1], 0 neutral
      quadrant      TEXT                  Q1..Q4 (Russell; 0 counts as positive)
      p_q1..p_q4    REAL                  quadrant probabilities in [0, 1] (NULL: model has none)
      curve         BLOB                  (n, 2) float16 little-endian (valence, arousal) at 2 Hz
      tags          TEXT                  JSON {tag: score in [0, 1]}, the model's top 5
      embedding     BLOB                  (dim,) float16 little-endian clip embedding (NULL: none)
      dim           INTEGER               embedding length (200 for the default model)
      artist, title TEXT                  from the file's tags when readable (else NULL)
      indexed_at    TEXT                  UTC, ISO 8601
    failures   files that could not be predicted: path UNIQUE, size, mtime_ns, error, failed_at
    meta       key/value text: "model" (the name the last index run used), "created_at"
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote
from typing import Any, Iterable

import numpy as np

from ..errors import MERError
from ..infer.rows import f16_blob, now  # noqa: F401  (re-exported: the library's writers and tests use them here)
from ..infer.schema import LIBRARY_COLUMNS

SCHEMA_VERSION = 2
BUSY_MS = 30_000  # wait this long for another writer's transaction before giving up
_READONLY, _CANTOPEN = 8, 14  # SQLite's primary result codes: cannot write, cannot open (a -shm beside it)

SONG_COLUMNS = LIBRARY_COLUMNS  # the columns every writer fills, from mer.infer.schema

_V1 = """
CREATE TABLE IF NOT EXISTS songs (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha1 TEXT NOT NULL,
    duration REAL NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    weights_sha1 TEXT NOT NULL,
    valence REAL NOT NULL,
    arousal REAL NOT NULL,
    quadrant TEXT NOT NULL,
    p_q1 REAL, p_q2 REAL, p_q3 REAL, p_q4 REAL,
    curve BLOB,
    tags TEXT,
    embedding BLOB,
    dim INTEGER,
    artist TEXT,
    title TEXT,
    indexed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS songs_sha1 ON songs(sha1);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    error TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

#: version -> the SQL that brings version-1 to it (0 -> 1 creates everything; 2: mood words,
#: NULL for songs indexed before, which ``mer search --mood`` then places by the lexicon)
MIGRATIONS: dict[int, str] = {1: _V1, 2: "ALTER TABLE songs ADD COLUMN moods TEXT"}


class LibraryError(MERError):
    """A library database that is missing, not a mer library, too new, or a bad query."""


def corrupt(path: str | Path, exc: BaseException) -> LibraryError:
    """The one-line error for a file SQLite cannot read as a database (damaged or foreign bytes)."""
    return LibraryError(f"{path}: is not a mer library or is corrupt ({exc}); restore it from a backup, or index "
                        "again into a new file with `mer index DIR --db NEW.sqlite`")


def _translated(method: Any) -> Any:
    """``method`` with SQLite's "malformed" / "not a database" errors (exactly
    :class:`sqlite3.DatabaseError`; its subclasses, such as a locked database, stay as they are)
    raised as :func:`corrupt`, naming the file."""
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise
            conn = self if isinstance(self, sqlite3.Connection) else self.connection
            raise corrupt(getattr(conn, "path", "library"), exc) from None
    return call


class _Cursor(sqlite3.Cursor):
    """A cursor whose damaged-file errors name the library (see :func:`_translated`)."""

    execute = _translated(sqlite3.Cursor.execute)
    executemany = _translated(sqlite3.Cursor.executemany)
    fetchone = _translated(sqlite3.Cursor.fetchone)
    fetchmany = _translated(sqlite3.Cursor.fetchmany)
    fetchall = _translated(sqlite3.Cursor.fetchall)
    __next__ = _translated(sqlite3.Cursor.__next__)


class _Connection(sqlite3.Connection):
    """A connection to a library file whose cursors are :class:`_Cursor` (``path``: the file;
    ``readonly``: opened read-only, see :func:`connect`)."""

    path: Path
    readonly: bool = False

    def cursor(self, factory: Any = _Cursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    commit = _translated(sqlite3.Connection.commit)


def check_integrity(conn: sqlite3.Connection, path: str | Path) -> None:
    """Read every page of the library (``PRAGMA quick_check``): a :class:`LibraryError` when any is
    damaged. Costs a full read of the file, so it is for start-up (``mer serve --library``)."""
    problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    if problem != "ok":
        raise corrupt(path, sqlite3.DatabaseError(" ".join(str(problem).replace("*", "").split())))


def connect(path: str | Path, create: bool = False) -> sqlite3.Connection:
    """Open the library at ``path`` (WAL mode, schema up to date). ``create``: make it when
    missing and open it for writing (``mer index``); otherwise a missing or foreign file is a
    :class:`LibraryError`, and a library SQLite cannot write to is opened read-only (the
    connection's ``readonly`` is then True), where a writer gets :func:`read_only`."""
    path = Path(path)
    if path.is_dir():
        raise LibraryError(f"{path}: is a folder; give the library's database file, e.g. --db music.sqlite")
    if not create and not path.is_file():
        raise LibraryError(f"{path}: no such library; index a folder first with `mer index DIR --db {path}`")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"{path}: cannot make its folder ({exc.strerror or exc}); give --db in a "
                               "writable folder") from None
        if path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            raise read_only(path, "no write permission")  # SQLite would open it read-only without a word
    try:
        conn = _open(path, str(path))
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no committed work, corrupts nothing
        migrate(conn, path, create)
    except sqlite3.OperationalError as exc:
        if not _cannot_write(exc):
            raise _foreign(path, exc) from None
        if create:
            raise read_only(path, exc) from None
        conn = _open_read_only(path)
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, exc) from None
    conn.row_factory = sqlite3.Row
    return conn


def read_only(path: str | Path, why: object) -> LibraryError:
    """The one-line error for a write to a library that cannot be written (``mer index``)."""
    if not Path(path).exists():
        return LibraryError(f"{path}: cannot create the library there ({why}); its folder is read-only: give "
                            "--db in a writable folder")
    return LibraryError(f"{path}: the library is read-only ({why}: a read-only file, folder or mount); searches "
                        "work, but `mer index` writes into it: make it writable, or copy it to a writable folder "
                        "and index into the copy")


def _foreign(path: Path, exc: BaseException) -> LibraryError:
    return LibraryError(f"{path}: not a mer library ({exc}); give the file `mer index --db` wrote, "
                        "or a new name to start one")


def _cannot_write(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed for want of writing (the file, or a ``-shm``/``-wal`` beside it)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (_READONLY, _CANTOPEN)
    return any(s in str(exc) for s in ("readonly database", "unable to open database file"))


def _open(path: Path, database: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(database, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False,
                           factory=_Connection, uri=uri)
    conn.path = path
    conn.readonly = uri
    return conn


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only: ``mode=ro``, which still needs a ``-shm`` file beside a WAL
    library (made there, or left by the last writer), else ``immutable=1``, which needs none but
    reads only what the last writer merged into the file itself (it does when it closes)."""
    base = "file:" + quote(str(path.resolve()), safe="/") + "?mode=ro"
    try:
        conn = _open(path, base, uri=True)
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        migrate(conn, path, create=False, write=False)
        return conn
    except sqlite3.OperationalError as exc:
        if not _cannot_write(exc):
            raise _foreign(path, exc) from None
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise LibraryError(f"{path}: the library is read-only and its write-ahead log {wal.name} holds changes "
                           "SQLite cannot read without writing beside it; open it once where its folder is writable "
                           "(any `mer search` merges them), or copy the folder to a writable place")
    try:
        conn = _open(path, base + "&immutable=1", uri=True)
        migrate(conn, path, create=False, write=False)
    except sqlite3.OperationalError as exc:
        if _cannot_write(exc):
            raise LibraryError(f"{path}: cannot read the library ({exc}); check that you may read the file "
                               "and its folder") from None
        raise _foreign(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, exc) from None
    return conn


def migrate(conn: sqlite3.Connection, path: str | Path = "", create: bool = True, write: bool = True) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` in one transaction; return the old version.
    ``write=False`` (a read-only connection): only check that it is up to date."""
    old = conn.execute("PRAGMA user_version").fetchone()[0]
    if old > SCHEMA_VERSION:
        raise LibraryError(f"{path}: library schema version {old} is newer than this mer understands "
                           f"({SCHEMA_VERSION}); upgrade mer")
    if old == SCHEMA_VERSION:
        return old
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if old == 0 and tables and "songs" not in tables:
        raise LibraryError(f"{path}: not a mer library (no songs table); index a folder into a new file with "
                           f"`mer index DIR --db NEW.sqlite`")
    if old == 0 and not create and "songs" not in tables:
        raise LibraryError(f"{path}: not a mer library (no songs table); index a folder first with "
                           f"`mer index DIR --db {path}`")
    if not write:
        raise LibraryError(f"{path}: the library is read-only and was made by an older mer (schema version {old}); "
                           "run `mer index` on it once where it is writable, or on a writable copy")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(old + 1, SCHEMA_VERSION + 1):
            # statement by statement: executescript() would commit in the middle of the transaction
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('created_at', ?)", (now(),))
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return old


# -- encoding ----------------------------------------------------------------------------

def curve_of(blob: bytes | None) -> np.ndarray:
    """``(n, 2)`` float32 (valence, arousal) curve from its blob."""
    if not blob:
        return np.zeros((0, 2), np.float32)
    return np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(-1, 2)


_UPSERT = (f"INSERT INTO songs ({', '.join(SONG_COLUMNS)}) VALUES ({', '.join('?' * len(SONG_COLUMNS))}) "
           f"ON CONFLICT(path) DO UPDATE SET "
           + ", ".join(f"{c}=excluded.{c}" for c in SONG_COLUMNS if c != "path"))


def upsert_songs(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Insert rows, replacing (same id) a row of the same path. Call inside a transaction."""
    conn.executemany(_UPSERT, ([r.get(c) for c in SONG_COLUMNS] for r in rows))


def song_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A ``songs`` row as the public dict of :meth:`mer.library.Library.songs`."""
    keys = row.keys()
    d: dict[str, Any] = {k: row[k] for k in ("id", "path", "duration", "valence", "arousal", "quadrant", "p_q1", "p_q2", "p_q3",
                             "p_q4", "artist", "title", "model") if k in keys}
    if "tags" in keys:
        d["tags"] = json.loads(row["tags"]) if row["tags"] else {}
    if "moods" in keys:
        d["moods"] = json.loads(row["moods"]) if row["moods"] else {}
    return d
