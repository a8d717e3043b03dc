"""What the ``mer serve`` tests share: a predictor of the default model, the framework's test
client, generated WAV bytes, waiting for a job, a free local port."""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import pytest
import soundfile as sf

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from mer.infer import Predictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor("default")


def _client(app, **kw) -> TestClient:
    """The framework's test client, asking for the server by a name it answers to."""
    return TestClient(app, base_url="http://127.0.0.1:8000", **kw)


def _wav_bytes(seconds: float = 4.0, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth.clip(0.5, 0.5, seconds, 16000, seed=seed), 16000, format="WAV")
    return buf.getvalue()


def _wait(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = client.get(f"/api/jobs/{job_id}").json()
        if j["state"] in ("done", "error"):
            return j
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")



DESKTOP, PHONE = (1280, 800), (390, 844)  # the viewports the page is checked at (a phone: an iPhone 12-15's)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeLibrary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def songs(self) -> list[dict]:
        return [{"id": 1, "path": str(self.path), "duration": 4.0, "valence": 0.3, "arousal": 0.2, "quadrant": "Q1"}]

    def audio_path(self, song_id: int) -> Path:
        if song_id != 1:
            raise KeyError(song_id)
        return self.path


def _song_row(path: str, valence: float = 0.1, arousal: float = 0.2, **tags: str | None) -> dict:
    """A row of a library's ``songs`` table (``tags``: artist, title), its quadrant from the signs."""
    from mer.library.store import now

    quadrant = ("Q1" if valence >= 0 else "Q2") if arousal >= 0 else ("Q4" if valence >= 0 else "Q3")
    return {"path": path, "size": 1, "mtime_ns": 1, "sha1": "0" * 40, "duration": 2.0, "model": "default",
            "model_version": "2", "weights_sha1": "w", "valence": valence, "arousal": arousal, "quadrant": quadrant,
            "indexed_at": now(), **tags}


def _library_rows(db: Path, rows: list[dict]):  # noqa: ANN202
    """A real library file holding ``rows`` (see :func:`_song_row`), opened as `mer serve --library` opens it."""
    from mer.library import Library
    from mer.library.store import connect, upsert_songs

    conn = connect(db, create=True)
    conn.execute("BEGIN")
    upsert_songs(conn, rows)
    conn.execute("COMMIT")
    conn.close()
    return Library(db)


def _real_library(db: Path, song: Path):  # noqa: ANN202
    """A real library file holding one song."""
    return _library_rows(db, [_song_row(str(song))])
