"""A library on a read-only folder or mount (a shared music disk) is searched read-only by
``mer search``, ``mer playlist`` and ``mer serve --library``; ``mer index`` says in one line that
it is read-only.

Root ignores file modes, and CI runs the tests as root: there each command runs in a child
process that has dropped CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set before
``exec``, so ``chmod`` binds it as it binds any user. SQLite really cannot write the folder:
the read-only open path runs, nothing is mocked.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mer.library.store import connect, now, upsert_songs

REPO = Path(__file__).resolve().parents[1]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
ROWS = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.1, -0.8)]


def _drop_file_capabilities() -> None:
    """In the child, before exec: root loses the right to ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run(*argv: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    """``argv`` (after the Python interpreter) as a user whom file modes bind."""
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None, **kw)


def _song(path: str, valence: float, arousal: float) -> dict:
    quadrant = ("Q1" if valence >= 0 else "Q2") if arousal >= 0 else ("Q4" if valence >= 0 else "Q3")
    return {"path": path, "size": 1, "mtime_ns": 1, "sha1": f"{len(path):040d}", "duration": 60.0,
            "model": "default", "model_version": "2", "weights_sha1": "w", "valence": valence, "arousal": arousal,
            "quadrant": quadrant, "indexed_at": now()}


@pytest.fixture
def read_only_library(tmp_path: Path):  # noqa: ANN201
    """(db, folder): a real library of five songs in a folder that is then made read-only (0555,
    the file 0444); skipped only where no process here can be refused a write."""
    folder = tmp_path / "disk"
    folder.mkdir()
    db = folder / "music.sqlite"
    conn = connect(db, create=True)
    conn.execute("BEGIN")
    upsert_songs(conn, [_song(f"/music/song{i}.mp3", v, a) for i, (v, a) in enumerate(ROWS)])
    conn.execute("COMMIT")
    conn.close()  # the last connection merges the WAL into the file and deletes -wal and -shm
    assert sorted(p.name for p in folder.iterdir()) == ["music.sqlite"]
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        try:
            probe = _run("-c", f"open({str(folder / 'probe')!r}, 'w')", timeout=60)
        except OSError as exc:  # the child could not drop its capabilities
            pytest.skip(f"cannot make a read-only folder for a root process here ({exc})")
        if probe.returncode == 0:
            pytest.skip("cannot make a read-only folder here: a child process could still write into it")
        assert "PermissionError" in probe.stderr, probe.stderr
        yield db, folder
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_search_and_playlist_read_a_read_only_library(read_only_library, tmp_path):
    db, folder = read_only_library
    found = _run("-m", "mer", "search", str(db), "--va", "0.6,0.6", "-k", "3", "--format", "json")
    assert found.returncode == 0, found.stderr
    songs = json.loads(found.stdout)
    assert [s["path"] for s in songs][0] == "/music/song0.mp3" and len(songs) == 3
    listed = _run("-m", "mer", "playlist", str(db), "--from", "tense", "--to", "calm", "--minutes", "3")
    assert listed.returncode == 0 and "song" in listed.stdout, listed.stderr
    assert _listing(folder) == ["music.sqlite"]  # no -wal, -shm or anything else was made there


def test_index_into_a_read_only_library_is_one_line_saying_so(read_only_library, tmp_path):
    db, folder = read_only_library
    (tmp_path / "music").mkdir()
    done = _run("-m", "mer", "index", str(tmp_path / "music"), "--db", str(db), "-q")
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"mer: error: {db}: the library is read-only"), done.stderr
    assert "copy it to a writable folder" in done.stderr
    new = _run("-m", "mer", "index", str(tmp_path / "music"), "--db", str(folder / "new.sqlite"), "-q")
    assert new.returncode != 0 and new.stderr.count("\n") == 1, new.stderr
    assert "cannot create the library there" in new.stderr and "writable folder" in new.stderr, new.stderr
    # a Library searched first (opened read-only) and then asked to index: the same error, not a write
    script = ("import sys\nfrom mer.library import Library, LibraryError\nlib = Library(sys.argv[1])\n"
              "assert len(lib.songs()) == 5\ntry:\n    lib.index(sys.argv[2], progress=False)\n"
              "except LibraryError as exc:\n    print(exc)\n")
    reused = _run("-c", script, str(db), str(tmp_path / "music"))
    assert reused.returncode == 0 and "the library is read-only" in reused.stdout, reused.stdout + reused.stderr
    assert _listing(folder) == ["music.sqlite"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_shows_a_read_only_library(read_only_library):
    import httpx

    db, folder = read_only_library
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), "--library", str(db)],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                              preexec_fn=_drop_file_capabilities if os.geteuid() == 0 else None)
    try:
        line = server.stderr.readline()  # the ready line, or the error that stopped it
        assert line.startswith("mer serve: http://127.0.0.1"), line + server.stderr.read() if server.poll() else line
        songs = None
        for _ in range(50):  # bounded: ready means listening, but give a loaded machine a moment
            try:
                songs = httpx.get(f"http://127.0.0.1:{port}/api/library/songs", timeout=10).json()["songs"]
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert songs is not None and len(songs) == len(ROWS)
        assert _listing(folder) == ["music.sqlite"]
    finally:
        server.terminate()
        server.wait(timeout=30)
