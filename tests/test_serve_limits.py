"""``mer serve``'s bounds on one request and its process: Ctrl-C, streamed and oversized uploads,
decoded length caps, bad limits at start, a busy port, stalled clients on a real server."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mer.infer import Predictor  # noqa: E402
from mer.serve.app import create_app  # noqa: E402
from serve_common import REPO, _client, _free_port, _real_library, _wait, _wav_bytes


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The default model, loaded once for the module."""
    return Predictor("default")


def test_ctrl_c_stops_cleanly_and_leaves_no_upload(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), "--host", "0.0.0.0",
                               "--token", "t0k"], stderr=subprocess.PIPE, text=True, env=env)
    first = server.stderr.readline()
    assert "warning: --host 0.0.0.0" in first
    assert "?token=t0k" in server.stderr.readline()
    import httpx

    r = httpx.post(f"http://127.0.0.1:{port}/api/predict?token=t0k", files=[("files", ("a.wav", _wav_bytes(2.0)))])
    assert r.status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 401
    before = {p.name for p in tmp_path.iterdir()}
    assert any(n.startswith("mer-serve-") for n in before)
    server.send_signal(2)  # Ctrl-C
    assert server.wait(timeout=30) == 0
    assert not any(p.name.startswith("mer-serve-") for p in tmp_path.iterdir()), before


# ------------------------------------------------------------------ hostile input (the probe's findings)
MiB = 1 << 20
BOUNDARY = b"mer-test-boundary"


def _multipart(files: list[tuple[bytes, int]]):  # noqa: ANN202
    """A multipart body of zero-filled files (name, bytes), yielded 1 MiB at a time, as a client streams it."""
    for name, size in files:
        yield (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="' + name
               + b'"\r\nContent-Type: audio/wav\r\n\r\n')
        for _ in range(size // MiB):
            yield bytes(MiB)
        yield b"\r\n"
    yield b"--" + BOUNDARY + b"--\r\n"


def _post_streamed(app, chunks, length: int | None = None) -> tuple[int, dict, int]:  # noqa: ANN001
    """POST ``chunks`` to /api/predict straight through ASGI (chunked unless ``length``): the status,
    the JSON answer and how many bytes the app read of the body before it answered."""
    import asyncio
    import json

    it, consumed, sent = iter(chunks), 0, []

    async def receive() -> dict:
        nonlocal consumed
        chunk = next(it, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"multipart/form-data; boundary=" + BOUNDARY),
               (b"content-length", str(length).encode()) if length is not None else (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])), consumed


def test_chunked_upload_over_the_file_limit_stops_at_the_limit_and_keeps_nothing(predictor):
    app = create_app(predictor, max_upload_mb=5)
    try:
        status, body, read = _post_streamed(app, _multipart([(b"big.flac", 200 * MiB)]))
        assert status == 413 and "big.flac is larger than 5 MB" in body["error"] and "--max-upload-mb" in body["error"]
        assert read < 7 * MiB, read / MiB  # not the 200 MiB the client offered
        assert list(app.state.queue.folder.iterdir()) == [] and not app.state.queue.jobs
    finally:
        app.state.queue.close()


def test_upload_with_a_length_is_cut_at_the_file_limit_and_the_request_limit(predictor):
    app = create_app(predictor, max_upload_mb=5, max_files=4)  # 20 MB per upload
    try:
        one = [(b"one.wav", 18 * MiB)]
        length = sum(map(len, _multipart(one)))  # under the upload's limit: the file's is checked as it streams
        status, body, read = _post_streamed(app, _multipart(one), length=length)
        assert status == 413 and "one.wav is larger than 5 MB" in body["error"] and read < 7 * MiB, read / MiB
        assert list(app.state.queue.folder.iterdir()) == []
    finally:
        app.state.queue.close()
    few = create_app(predictor, max_upload_mb=5, max_files=4, max_request_mb=10)
    try:
        three = [(b"a.wav", 4 * MiB), (b"b.wav", 4 * MiB), (b"c.wav", 4 * MiB)]  # each fits, all do not
        status, body, read = _post_streamed(few, _multipart(three))
        assert status == 413 and "10 MB in all" in body["error"] and "--max-request-mb" in body["error"]
        assert read < 12 * MiB, read / MiB  # 10 MB and the chunk that crossed it
        status, body, read = _post_streamed(few, _multipart(three), length=sum(map(len, _multipart(three))))
        assert status == 413 and read == 0 and "at most 5 MB per file and 10 MB per upload" in body["error"]
        assert list(few.state.queue.folder.iterdir()) == [] and not few.state.queue.jobs
    finally:
        few.state.queue.close()


class Spy:
    """A predictor that records how it was called (to see where decoding was told to stop)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.calls = predictor, []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.predictor, name)

    def __call__(self, path, **kw):  # noqa: ANN001, ANN204
        self.calls.append(kw)
        return self.predictor(path, **kw)


def _flac_with_unknown_length(seconds: float) -> bytes:
    """A FLAC file whose header claims no length (STREAMINFO total samples 0): only decoding tells."""
    buf = io.BytesIO()
    sf.write(buf, synth.clip(0.2, 0.2, seconds, 16000, seed=5), 16000, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # sample rate | channels | bits | samples
    data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def test_decoded_length_is_capped_by_the_header_and_while_decoding(predictor):
    spy = Spy(predictor)
    with _client(create_app(spy, max_minutes=0.1)) as client:  # 6 s
        res = client.post("/api/predict", files=[("files", ("long.wav", _wav_bytes(10.0), "audio/wav")),
                                                 ("files", ("lying.flac", _flac_with_unknown_length(10.0), "audio/flac")),
                                                 ("files", ("short.wav", _wav_bytes(4.0), "audio/wav"))])
        jobs = {j["name"]: _wait(client, j["id"]) for j in res.json()["jobs"]}
    long, lying, short = jobs["long.wav"], jobs["lying.flac"], jobs["short.wav"]
    assert long["state"] == "error" and "long.wav: 0.2 minutes long" in long["error"]
    assert "at most 0.1 minutes" in long["error"] and "--max-minutes" in long["error"]
    assert lying["state"] == "error" and "lying.flac: longer than that" in lying["error"], lying
    assert short["state"] == "done" and abs(short["result"]["duration"] - 4.0) < 0.1
    assert len(spy.calls) == 2  # the long file was refused from its header, before any decoding
    assert any(c.get("duration") == pytest.approx(6 + 1.0) for c in spy.calls)  # the liar: told to stop at the cap


@pytest.fixture
def serve_main(monkeypatch, capsys):  # noqa: ANN201
    """`mer serve ARGS` in this process with the serving itself replaced: (exit status, stderr)."""
    import uvicorn

    import mer.serve.app as served
    from mer.cli import main

    def never(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the server started")

    monkeypatch.setattr(served, "run", never, raising=False)
    monkeypatch.setattr(uvicorn, "run", never)

    def call(*args: str) -> tuple[int, str]:
        status = main(["serve", "--port", str(_free_port()), *args])
        return status, capsys.readouterr().err
    return call


def test_bad_limits_are_refused_with_one_line(serve_main):
    for flag in ("--max-upload-mb", "--max-minutes", "--max-request-mb", "--read-timeout"):
        for value in ("nan", "inf", "-inf", "0", "-3"):
            status, err = serve_main(f"{flag}={value}")
            assert status != 0 and err.count("\n") == 1 and err.startswith(f"mer: error: {flag} "), (flag, value, err)
            assert "positive number" in err and "ready" not in err


def test_a_bad_library_is_refused_at_start(serve_main, tmp_path):
    from mer.library import SCHEMA_VERSION
    from mer.library.store import connect

    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    (tmp_path / "text.sqlite").write_text("not a database at all, " * 200)
    newer = tmp_path / "newer.sqlite"
    connect(newer, create=True).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    damaged = tmp_path / "damaged.sqlite"
    _real_library(damaged, song)
    data = bytearray(damaged.read_bytes())
    data[4096:len(data) - 1024] = np.random.default_rng(0).integers(0, 256, len(data) - 5120, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    for name, why in (("missing.sqlite", "no such library"), ("text.sqlite", "not a mer library"),
                      ("newer.sqlite", "upgrade mer"), ("damaged.sqlite", "is corrupt")):
        status, err = serve_main("--library", str(tmp_path / name))
        assert status != 0 and err.count("\n") == 1 and why in err and name in err, (name, err)
        assert "ready" not in err and "Traceback" not in err


def _serve_process(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), *args],
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    return server, port


def test_a_busy_port_is_one_line_and_nothing_ready():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = subprocess.run([sys.executable, "-m", "mer", "serve", "--port", str(port)], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert server.returncode == 2, server.stderr
    assert server.stderr == f"mer: error: --host 127.0.0.1: port {port} is in use; choose another with --port\n"


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before it closed ``sock``, or None when it was still open after ``seconds``."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return got


@pytest.mark.slow
def test_a_real_server_drops_stalled_clients_and_oversized_chunked_uploads(tmp_path):
    server, port = _serve_process("--max-upload-mb", "1", "--read-timeout", "1", env={"TMPDIR": str(tmp_path)})
    try:
        assert "mer serve: http://127.0.0.1" in server.stderr.readline()
        silent, partial, body = (socket.create_connection(("127.0.0.1", port)) for _ in range(3))
        partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        body.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
        assert _closed_within(silent, 5) == b""
        assert _closed_within(partial, 5) == b""
        stalled = _closed_within(body, 5)
        assert stalled is not None and stalled.startswith(b"HTTP/1.1 408"), stalled
        # 50 MiB sent chunked against --max-upload-mb 1: the server answers 413 and stops reading
        up = socket.create_connection(("127.0.0.1", port))
        up.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n")
        sent = 0
        try:
            for chunk in _multipart([(b"big.wav", 50 * MiB)]):
                up.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _closed_within(up, 10) or b""
        assert sent < 40 * MiB, sent / MiB
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
        folder = next(tmp_path.glob("mer-serve-*"))
        assert list(folder.iterdir()) == []
        assert httpx_get(port, "/api/health") == 200  # and the server goes on
    finally:
        server.terminate()
        server.wait(timeout=30)


def httpx_get(port: int, path: str) -> int:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}{path}").status_code
