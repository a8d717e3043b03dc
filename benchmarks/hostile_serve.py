"""Hostile input against a real `mer serve`: the probe's findings, each fired over real HTTP.

Starts `mer serve` (a subprocess on a free port, the bundled default model, a one-song library
in a temporary folder), sends each hostile request with http.client or a raw socket, and
prints one row per case: ``case | expected | got | PASS/FAIL``. Exits 1 when any case fails.

    .venv/bin/python -m benchmarks.hostile_serve       # about a minute; needs nothing but the repo

Cases: oversized uploads (chunked, with a Content-Length, over the per-upload limit), hours of
silence and a FLAC whose header hides its length (--max-minutes), DNS rebinding (a foreign
Host), cross-site uploads (Origin, Sec-Fetch-Site), another browser's jobs, /docs and the
token (read from a file, not in `ps`), security headers, half-open and stalled connections,
an audio id past SQLite's integers, a busy port, non-finite limits, and bad --library files.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

from benchmarks.cases import Cases
from mer import synth

REPO = Path(__file__).resolve().parents[1]

MiB = 1 << 20
BOUNDARY = b"hostile-boundary"
CASES = Cases()
check = CASES.check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mer(*args: str) -> list[str]:
    return [sys.executable, "-m", "mer", *args]


ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@contextlib.contextmanager
def server(*args: str, tmp: Path) -> Iterator[tuple[int, int]]:
    """`mer serve ARGS` on a free port with TMPDIR=tmp (its upload folder lands there): (port, pid)."""
    port = free_port()
    proc = subprocess.Popen(mer("serve", "--port", str(port), *args), stderr=subprocess.PIPE, text=True,
                            env={**ENV, "TMPDIR": str(tmp)})
    try:
        line = proc.stderr.readline()
        if "mer serve: http://" not in line:
            raise SystemExit(f"mer serve did not start: {line}{proc.stderr.read()}")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            host: str | None = None) -> tuple[int, dict, Any]:
    """One request over http.client: (status, headers lower-cased, JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        res = conn.getresponse()
        data = res.read()
        try:
            payload: Any = json.loads(data)
        except ValueError:
            payload = data.decode("utf-8", "replace")
        return res.status, {k.lower(): v for k, v in res.getheaders()}, payload
    finally:
        conn.close()


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, data in files:
        out += (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="' + name.encode()
                + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n")
    return out + b"--" + BOUNDARY + b"--\r\n"


FORM = {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY.decode()}


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``sock``; None if it was still open after ``seconds``."""
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


def stream_upload(port: int, mib: int, chunked: bool) -> tuple[int, str]:
    """Send one file of ``mib`` MiB of zeros as fast as the server reads it: (bytes it took, status line)."""
    head = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="big.flac"\r\n\r\n')
    total = len(head) + mib * MiB + 2 + len(BOUNDARY) + 6
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary="
              + BOUNDARY + (b"\r\nTransfer-Encoding: chunked" if chunked else b"\r\nContent-Length: %d" % total)
              + b"\r\n\r\n")
    sent, block = 0, bytes(MiB)
    try:
        for piece in [head] + [block] * mib + [b"\r\n--" + BOUNDARY + b"--\r\n"]:
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = closed_within(s, 20) or b""
    s.close()
    return sent, answer.split(b"\r\n", 1)[0].decode("latin-1")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_bytes(tmp: Path) -> int:
    return sum(f.stat().st_size for d in tmp.glob("mer-serve-*") for f in d.iterdir() if f.is_file())


def silence_flac(path: Path, seconds: float, sr: int = 16000, hide_length: bool = False) -> Path:
    zero = np.zeros(1 << 20, np.float32)
    with sf.SoundFile(path, "w", sr, 1, format="FLAC") as f:
        left = int(seconds * sr)
        while left > 0:
            f.write(zero[:min(left, len(zero))])
            left -= len(zero)
    if hide_length:  # STREAMINFO's 36-bit total sample count -> 0 ("unknown"): only decoding can tell
        data = bytearray(path.read_bytes())
        data[18:26] = (int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)).to_bytes(8, "big")
        path.write_bytes(bytes(data))
    return path


def wait_job(port: int, job_id: str, cookie: str = "", timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, _, job = request(port, "GET", f"/api/jobs/{job_id}", {"Cookie": cookie} if cookie else None)
        if job.get("state") in ("done", "error"):
            return job
        time.sleep(0.2)
    return {"state": "timeout"}


def make_library(tmp: Path, name: str = "music.sqlite") -> Path:
    from mer.library.store import connect, now, upsert_songs

    song = tmp / "song.wav"
    sf.write(song, synth.clip(0.5, 0.5, 3.0, 16000), 16000)
    db = tmp / name
    conn = connect(db, create=True)
    conn.execute("BEGIN")
    upsert_songs(conn, [{"path": str(song), "size": song.stat().st_size, "mtime_ns": 1, "sha1": "0" * 40,
                         "duration": 3.0, "model": "default", "model_version": "2", "weights_sha1": "w",
                         "valence": 0.5, "arousal": 0.5, "quadrant": "Q1", "indexed_at": now()}])
    conn.execute("COMMIT")
    conn.close()
    return db


# -- the cases ----------------------------------------------------------------------------------

def uploads(port: int, pid: int, tmp: Path) -> None:
    rss0 = rss_mib(pid)
    sent, status = stream_upload(port, 200, chunked=True)
    check("chunked 200 MiB upload, --max-upload-mb 5", "413, read < 40 MiB, 0 B kept",
          f"{status[9:12]}, read {sent / MiB:.0f} MiB, {folder_bytes(tmp)} B kept",
          status.startswith("HTTP/1.1 413") and sent < 40 * MiB and folder_bytes(tmp) == 0)
    sent, status = stream_upload(port, 200, chunked=False)
    check("200 MiB file with Content-Length", "413, read < 40 MiB, 0 B kept",
          f"{status[9:12]}, read {sent / MiB:.0f} MiB, {folder_bytes(tmp)} B kept",
          status.startswith("HTTP/1.1 413") and sent < 40 * MiB and folder_bytes(tmp) == 0)
    s = socket.create_connection(("127.0.0.1", port))  # a length over the upload limit: refused unread
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
              b"Content-Type: multipart/form-data; boundary=x\r\n\r\n" % (300 * MiB))
    answer = (closed_within(s, 10) or b"").split(b"\r\n", 1)[0].decode()
    check("Content-Length 300 MiB > upload limit", "413 before any body", answer[9:12], answer.startswith("HTTP/1.1 413"))
    check("server memory after the uploads", "< +100 MiB RSS", f"{rss0:.0f} -> {rss_mib(pid):.0f} MiB",
          rss_mib(pid) - rss0 < 100)


def long_audio(port: int, pid: int, tmp: Path) -> None:
    three_hours = [silence_flac(tmp / f"silence-{i}.flac", 3 * 3600) for i in range(2)]
    rss0 = rss_mib(pid)
    body = multipart([(p.name, p.read_bytes()) for p in three_hours])
    t0 = time.time()
    status, _, res = request(port, "POST", "/api/predict", FORM, body)
    jobs = [wait_job(port, j["id"]) for j in res["jobs"]] if status == 200 else []
    errors = [j.get("error") or "" for j in jobs]
    check("2 x 3 h silent FLAC, --max-minutes 5", "per-file error naming --max-minutes",
          f"{len(errors)} errors in {time.time() - t0:.1f} s: {errors[0][:60] if errors else status}",
          len(jobs) == 2 and all(j["state"] == "error" and "--max-minutes" in j["error"] and "silence-" in j["error"]
                                 for j in jobs))
    check("server memory after 6 h of audio", "< +150 MiB RSS", f"{rss0:.0f} -> {rss_mib(pid):.0f} MiB",
          rss_mib(pid) - rss0 < 150)
    liar = silence_flac(tmp / "liar.flac", 12 * 60, sr=8000, hide_length=True)
    status, _, res = request(port, "POST", "/api/predict", FORM, multipart([(liar.name, liar.read_bytes())]))
    job = wait_job(port, res["jobs"][0]["id"]) if status == 200 else {}
    check("12 min FLAC whose header hides its length", "error while decoding (--max-minutes)",
          f"{job.get('state')}: {(job.get('error') or '')[:60]}",
          job.get("state") == "error" and "--max-minutes" in (job.get("error") or ""))


def origins(port: int) -> None:
    for path in ("/api/library/songs", "/api/jobs", "/api/library/audio/1", "/"):
        status, _, res = request(port, "GET", path, host=f"evil.example:{port}")
        check(f"Host: evil.example GET {path}", "421, no paths", status,
              status == 421 and "song.wav" not in json.dumps(res))
    status, _, _ = request(port, "GET", "/api/health", host=f"LOCALHOST:0{port}")
    check("Host: LOCALHOST:0PORT (a name it has)", "200", status, status == 200)
    wav = io.BytesIO()
    sf.write(wav, synth.clip(0.4, 0.4, 2.0, 16000), 16000, format="WAV")
    body = multipart([("a.wav", wav.getvalue())])
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        status, _, res = request(port, "POST", "/api/predict", {**FORM, **headers}, body)
        check(f"POST /api/predict {list(headers.items())[0]}", "403, nothing queued", status,
              status == 403 and "jobs" not in res)
    page = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    status, h, res = request(port, "POST", "/api/predict", {**FORM, **page}, body)
    cookie = h.get("set-cookie", "").split(";", 1)[0]
    check("POST from the page itself", "200 and an HttpOnly SameSite=Strict cookie",
          f"{status} {h.get('set-cookie', '')[:60]}",
          status == 200 and "httponly" in h.get("set-cookie", "").lower() and "samesite=strict" in
          h.get("set-cookie", "").lower())
    if status == 200:
        job_id = res["jobs"][0]["id"]
        wait_job(port, job_id, cookie)
        _, _, mine = request(port, "GET", "/api/jobs", {"Cookie": cookie})
        _, _, theirs = request(port, "GET", "/api/jobs", {"Cookie": "mer_client=someone-else-0123456789"})
        check("GET /api/jobs from another browser", "not the first browser's job",
              f"own {len(mine['jobs'])}, other {len(theirs['jobs'])}",
              [j["id"] for j in mine["jobs"]] == [job_id] and theirs["jobs"] == [])
    status, h, _ = request(port, "GET", "/")
    check("security headers on the page", "nosniff, DENY, CSP script-src 'self'",
          f"{h.get('x-content-type-options')}, {h.get('x-frame-options')}, {h.get('content-security-policy', '')[:40]}",
          h.get("x-content-type-options") == "nosniff" and h.get("x-frame-options") == "DENY"
          and "script-src 'self';" in h.get("content-security-policy", "")
          and "frame-ancestors 'none'" in h.get("content-security-policy", ""))
    status, _, res = request(port, "GET", "/api/library/audio/99999999999999999999")
    check("GET /api/library/audio/99999999999999999999", "404", f"{status} {res.get('error', '')[:40]}", status == 404)


def connections(port: int, timeout: float) -> None:
    half = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    for s in half[:20]:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # the rest never comes
    t0 = time.time()
    closed = sum(closed_within(s, timeout + 5) == b"" for s in half)
    check("40 half-open connections (20 silent, 20 partial headers)", f"all closed after --read-timeout {timeout:g}",
          f"{closed} closed in {time.time() - t0:.1f} s", closed == 40)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
              b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
    answer = (closed_within(s, timeout + 5) or b"timeout").split(b"\r\n", 1)[0].decode()
    check("upload body that stalls", "408 and closed", answer, answer.startswith("HTTP/1.1 408"))


def token(tmp: Path) -> None:
    (tmp / "token").write_text("s3cret-hostile\n")
    with server("--token-file", str(tmp / "token"), tmp=tmp) as (port, pid):
        for path in ("/docs", "/openapi.json", "/api/jobs"):
            status, _, _ = request(port, "GET", path)
            check(f"GET {path} without the token", "401", status, status == 401)
        status, _, _ = request(port, "GET", "/openapi.json", {"Authorization": "Bearer s3cret-hostile"})
        check("GET /openapi.json with the token", "200", status, status == 200)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        check("--token-file: the token is not in ps", "absent", b"s3cret" in cmdline and "present" or "absent",
              b"s3cret" not in cmdline)


def refusals(tmp: Path, busy_port: int) -> None:
    def run(*args: str) -> tuple[int, str]:
        p = subprocess.run(mer("serve", *args), capture_output=True, text=True, timeout=120, env=ENV)
        return p.returncode, p.stderr

    code, err = run("--port", str(busy_port))
    check("a busy port", "exit 2, one line, nothing ready", f"{code}: {err.strip()[:70]}",
          code == 2 and err.count("\n") == 1 and f"port {busy_port} is in use" in err and "ready" not in err)
    for flag, value in (("--max-upload-mb", "nan"), ("--max-upload-mb", "inf"), ("--max-minutes", "nan"),
                        ("--max-minutes", "0")):
        code, err = run("--port", str(free_port()), f"{flag}={value}")
        check(f"{flag} {value}", "one-line range error", f"{code}: {err.strip()[:70]}",
              code != 0 and err.count("\n") == 1 and "positive number" in err)
    from mer.library.store import connect

    (tmp / "text.sqlite").write_text("not a database " * 500)
    newer = tmp / "newer.sqlite"
    connect(newer, create=True).execute("PRAGMA user_version=99")
    damaged = make_library(tmp / "damaged", "damaged.sqlite")
    data = bytearray(damaged.read_bytes())
    data[4096:-1024] = np.random.default_rng(1).integers(0, 256, len(data) - 5120, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    for db, why in ((tmp / "missing.sqlite", "no such library"), (tmp / "text.sqlite", "not a mer library"),
                    (newer, "upgrade mer"), (damaged, "corrupt")):
        code, err = run("--port", str(free_port()), "--library", str(db))
        shown = err.strip().replace(str(db.parent) + "/", "").replace("mer: error: ", "")
        check(f"--library {db.name}", "refused at start, one line", f"{code}: {shown}",
              code != 0 and err.count("\n") == 1 and why in err and "ready" not in err)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-") as t:
        tmp = Path(t)
        (tmp / "damaged").mkdir()
        db = make_library(tmp)
        timeout = 2.0
        with server("--max-upload-mb", "5", "--max-minutes", "5", "--read-timeout", str(timeout),
                    "--library", str(db), tmp=tmp) as (port, pid):
            uploads(port, pid, tmp)
            long_audio(port, pid, tmp)
            origins(port)
            connections(port, timeout)
            refusals(tmp, port)
            status, _, _ = request(port, "GET", "/api/health")
            check("after all that: health, upload folder", "200, 0 B kept", f"{status}, {folder_bytes(tmp)} B",
                  status == 200 and folder_bytes(tmp) == 0)
        token(tmp)
    return CASES.report()

if __name__ == "__main__":
    sys.exit(main())
