"""``mer serve`` against a hostile client, on a real uvicorn server on 127.0.0.1 (run in a thread
of this process, as ``mer serve`` runs it) and raw sockets: bodies trickled slower than any
pause the read timeout catches, and numbers too long for ``int()`` in the path and headers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import select
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import soundfile as sf

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from mer.cli.serve import listen  # noqa: E402
from mer.infer import Predictor  # noqa: E402
from mer.serve.app import create_app, server  # noqa: E402

BOUNDARY = b"mer-hostile"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor("default")


@contextlib.contextmanager
def served(app, read_timeout: float = 5.0) -> Iterator[int]:  # noqa: ANN001
    """``app`` served by uvicorn (as :func:`mer.serve.app.run` serves it) on a free port of
    127.0.0.1 in a thread; yields the port, stops the server when done."""
    sock = listen("127.0.0.1", 0)
    srv = server(app, read_timeout)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # at most 10 s to start
            if srv.started:
                break
            time.sleep(0.05)
        assert srv.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _head(port: int, length: int | None, extra: bytes = b"") -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (port, framing) + extra
            + b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n")


def _part(name: bytes, data: bytes) -> bytes:
    return (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="' + name
            + b'"\r\nContent-Type: audio/wav\r\n\r\n' + data + b"\r\n--" + BOUNDARY + b"--\r\n")


def _answer(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (at most ``seconds``)."""
    sock.settimeout(seconds)
    got = b""
    with contextlib.suppress(socket.timeout, ConnectionResetError):
        while chunk := sock.recv(65536):
            got += chunk
    return got


def trickle(port: int, body: bytes, piece: int, every: float, most: float, chunked: bool = False
            ) -> tuple[bytes, float, bool]:
    """POST ``body`` ``piece`` bytes every ``every`` seconds, for at most ``most`` seconds: (what
    the server answered, seconds until it answered, whether it then closed the connection)."""
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(_head(port, None if chunked else len(body)))
        t0, at = time.monotonic(), 0
        while time.monotonic() - t0 < most and at < len(body):
            readable, _, _ = select.select([sock], [], [], every)
            if readable:
                break  # the server answered (or closed) while the body was still coming
            part = body[at:at + piece]
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            at += piece
        if chunked and at >= len(body):
            sock.sendall(b"0\r\n\r\n")
        select.select([sock], [], [], max(0.0, most - (time.monotonic() - t0)))
        took = time.monotonic() - t0
        got = _answer(sock, 2.0)
        closed = True
        with contextlib.suppress(OSError):  # after the answer: does the server still read this connection?
            sock.settimeout(0.5)
            closed = sock.recv(1) == b""
        return got, took, closed
    except socket.timeout:
        return b"", time.monotonic() - t0, False
    finally:
        sock.close()


def _json(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():  # one chunk, then the last
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return json.loads(body)


def _wav(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth.clip(0.5, 0.5, seconds, 16000, seed=1), 16000, format="WAV")
    return buf.getvalue()


# -- 1. a body trickled steadily is cut off after --body-timeout in all -----------------------------

@pytest.mark.parametrize("piece, every, chunked", [(1, 0.25, False), (1024, 0.5, True)],
                         ids=["a-byte-at-a-time", "1KiB-chunks"])
def test_a_trickled_body_gets_408_at_the_body_timeout_and_is_closed(predictor, piece, every, chunked):
    """Each pause is far below --read-timeout (5 s here), so only the bound on the whole body
    (2 s here) stops it: 408, one line of JSON, the connection closed, nothing kept."""
    app = create_app(predictor, timeout=5, body_timeout=2)
    with served(app, read_timeout=5) as port:
        got, took, closed = trickle(port, _part(b"slow.wav", bytes(20_000)), piece, every, most=6, chunked=chunked)
        assert got.startswith(b"HTTP/1.1 408 "), got[:200]
        error = _json(got)["error"]
        assert "too slow" in error and "2 s" in error and "--body-timeout" in error and "\n" not in error
        assert 1.8 < took < 4.5, took  # the bound, not the 6 s the client was willing to go on
        assert closed
        assert list(app.state.queue.folder.iterdir()) == [] and not app.state.queue.jobs


def test_a_fast_upload_and_a_slow_one_within_the_bound_are_not_cut_off(predictor):
    app = create_app(predictor, timeout=5, body_timeout=3, max_upload_mb=64)
    with served(app) as port:
        big = _part(b"big.wav", bytes(40 << 20))  # 40 MiB, sent at once: the time it takes here is not a trickle
        with socket.create_connection(("127.0.0.1", port)) as sock:
            t0 = time.monotonic()
            sock.sendall(_head(port, len(big)) + big)
            got = _first_response(sock, 30)
        assert got.startswith(b"HTTP/1.1 200 "), (got[:300], time.monotonic() - t0)
        assert [j["name"] for j in _json(got)["jobs"]] == ["big.wav"]
        song = _wav(3.0)  # a real song, in pieces over about a second: under the bound, it is predicted
        got, took, _ = trickle(port, _part(b"song.wav", song), len(song) // 8 + 1, 0.12, most=10)
        assert got.startswith(b"HTTP/1.1 200 "), got[:300]
        job = _json(got)["jobs"][0]["id"]
        for _ in range(600):  # bounded: at most 60 s on a loaded machine
            state = app.state.queue.jobs[job].state
            if state in ("done", "error"):
                break
            time.sleep(0.1)
        assert app.state.queue.jobs[job].state == "done", app.state.queue.jobs[job].error


def _first_response(sock: socket.socket, seconds: float) -> bytes:
    """One whole response (head and Content-Length body) from a kept-alive connection."""
    sock.settimeout(seconds)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_the_body_timeout_is_an_option_of_mer_serve(monkeypatch, capsys):
    import mer.cli.serve as cli_serve
    from mer.cli import build_parser, main

    assert build_parser().parse_args(["serve"]).body_timeout == 60
    assert build_parser().parse_args(["serve", "--body-timeout", "2.5"]).body_timeout == 2.5

    def never(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the server was about to start")

    monkeypatch.setattr(cli_serve, "listen", never)
    for value in ("nan", "inf", "0", "-1"):
        assert main(["serve", f"--body-timeout={value}"]) != 0
        err = capsys.readouterr().err
        assert err.startswith("mer: error: --body-timeout ") and err.count("\n") == 1 and "positive" in err, err


# -- 2. numbers too long for int() are 404/400, never a 500 with a traceback ------------------------

class _Library:
    def __init__(self, path: Path) -> None:
        self.path = path

    def songs(self) -> list[dict]:
        return [{"id": 1, "path": str(self.path), "duration": 2.0, "valence": 0.1, "arousal": 0.1, "quadrant": "Q1"}]

    def audio_path(self, song_id: int) -> Path:
        if song_id != 1:
            raise KeyError(song_id)
        return self.path


def _get(port: int, path: str, host: bytes = b"127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        return _answer(sock, 10)


def test_long_and_unicode_numbers_are_404_or_400_without_a_traceback(predictor, tmp_path, caplog):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav(1.0))
    app = create_app(predictor, library=_Library(song))
    caplog.set_level(logging.WARNING)
    with served(app) as port:
        assert _get(port, "/api/library/audio/1").startswith(b"HTTP/1.1 200 ")
        for bad in ("9" * 5000, "1" * 4301, "0" * 5000 + "1", "%C2%B2", "%D9%A1", "-1", "1e3"):  # ², Arabic-Indic 1
            got = _get(port, "/api/library/audio/" + bad)
            assert got.startswith(b"HTTP/1.1 404 "), (bad[:20], got[:200])
            error = _json(got)["error"]
            assert error.startswith("no song ") and "\n" not in error and len(error) < 100, error
        # a Host whose port is 5000 digits or a latin-1 "²" is not this server's name: 421, not a crash
        for host in (b"127.0.0.1:" + b"9" * 5000, b"127.0.0.1:\xb2"):
            got = _get(port, "/api/health", host=host)
            assert got.startswith((b"HTTP/1.1 421 ", b"HTTP/1.1 400 ")), got[:200]
        # a Content-Length of 5000 digits: refused (413 or the HTTP parser's 400), the server goes on
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + b"9" * 5000
                         + b"\r\nContent-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
            got = _answer(sock, 10)
        assert got.startswith((b"HTTP/1.1 413 ", b"HTTP/1.1 400 ")), got[:200]
        assert _get(port, "/api/health").startswith(b"HTTP/1.1 200 ")
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage()[:200] for r in logged]


def test_a_5000_digit_id_through_the_app_is_404(predictor, tmp_path):
    """The same in the framework's test client, which raises what the app raised."""
    from fastapi.testclient import TestClient

    song = tmp_path / "song.wav"
    song.write_bytes(_wav(1.0))
    with TestClient(create_app(predictor, library=_Library(song)), base_url="http://127.0.0.1:8000") as client:
        r = client.get("/api/library/audio/" + "9" * 5000)
        assert r.status_code == 404 and r.json()["error"].startswith("no song 9999")
        r = client.post("/api/predict", content=b"x", headers={"Content-Length": "9" * 5000,
                                                              "Content-Type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "upload too large" in r.json()["error"], r.text
