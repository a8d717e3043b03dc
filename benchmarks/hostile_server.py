"""Hostile clients against a real `mer serve`, second round: bodies trickled too slowly for any
pause to stall, numbers too long for ``int()``, and a library on a read-only folder.

Starts `mer serve` (a subprocess on a free port of 127.0.0.1, the bundled default model,
``--read-timeout 5 --body-timeout 8``, a one-song library in a folder made read-only), fires
each case over a raw socket or http.client and prints ``case | expected | got | PASS/FAIL``.
Exits 1 when any case fails; stops by itself (about 45 s here). As root, the server and the CLI
runs drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so the folder's modes bind them too.

    .venv/bin/python -m benchmarks.hostile_server

The first round (oversized uploads, hours of audio, DNS rebinding, cross-site uploads, tokens,
half-open connections, bad --library files) is ``python -m benchmarks.hostile_serve``; two of
its cases (a stalled body, a foreign Host) are repeated here next to the new ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import soundfile as sf

from benchmarks.cases import Cases
from benchmarks.hostile_serve import ENV, free_port, make_library, mer, request, wait_job
from mer import synth

READ_TIMEOUT, BODY_TIMEOUT = 5.0, 8.0
BOUNDARY = b"hostile-trickle"
CASES = Cases()
check = CASES.check


def drop_file_capabilities() -> None:
    """In a child, before exec: root loses the right to ignore file modes (a no-op for others)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=ENV,
                          preexec_fn=drop_file_capabilities)


@contextlib.contextmanager
def server(*args: str, tmp: Path) -> Iterator[tuple[int, Path]]:
    """`mer serve ARGS` on a free port, TMPDIR=tmp: (port, the file its stderr goes to)."""
    port, log = free_port(), tmp / "server.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(mer("serve", "--port", str(port), *args), stderr=err, text=True,
                                env={**ENV, "TMPDIR": str(tmp)}, preexec_fn=drop_file_capabilities)
        try:
            for _ in range(600):  # at most 60 s to load the model and say it is ready
                if "mer serve: http://" in log.read_text() or proc.poll() is not None:
                    break
                time.sleep(0.1)
            if "mer serve: http://" not in log.read_text():
                raise SystemExit(f"mer serve did not start: {log.read_text()}")
            yield port, log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def part(name: bytes, data: bytes) -> bytes:
    return (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="' + name
            + b'"\r\nContent-Type: audio/wav\r\n\r\n' + data + b"\r\n--" + BOUNDARY + b"--\r\n")


def head(length: int | None) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing
            + b"\r\nContent-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n")


def answer(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes the connection (at most ``seconds``)."""
    return answer_and_close(sock, seconds)[0]


def answer_and_close(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the server sends within ``seconds``, and whether it then closed the connection."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except socket.timeout:
        return got, False
    except ConnectionResetError:
        pass
    return got, True


def trickle(port: int, body: bytes, piece: int, every: float, most: float, chunked: bool = False
            ) -> tuple[bytes, float, bool]:
    """Send ``body`` ``piece`` bytes every ``every`` s for at most ``most`` s: (the answer, seconds
    until the server answered, whether it closed the connection)."""
    sock = socket.create_connection(("127.0.0.1", port))
    t0, at = time.monotonic(), 0
    try:
        sock.sendall(head(None if chunked else len(body)))
        while time.monotonic() - t0 < most and at < len(body):
            if select.select([sock], [], [], every)[0]:
                break  # the server answered while the body was still coming
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                chunk = body[at:at + piece]
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            at += piece
        if at >= len(body) and chunked:
            sock.sendall(b"0\r\n\r\n")
        select.select([sock], [], [], max(0.0, most - (time.monotonic() - t0)))
        took = time.monotonic() - t0
        got, closed = answer_and_close(sock, 3)
        return got, took, closed
    finally:
        sock.close()


def status_of(got: bytes) -> str:
    return got.split(b"\r\n", 1)[0][9:12].decode("latin-1") or "none"


def error_of(got: bytes) -> str:
    body = got.partition(b"\r\n\r\n")[2]
    with contextlib.suppress(ValueError):
        return str(json.loads(body).get("error", ""))
    return body.decode("latin-1")[:80]


def raw_get(port: int, path: bytes, host: bytes = b"127.0.0.1") -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        return answer(sock, 10)


# -- the cases ----------------------------------------------------------------------------------

def trickles(port: int, tmp: Path) -> None:
    body = part(b"slow.wav", bytes(64 * 1024))
    expected = f"408 at ~{BODY_TIMEOUT:g} s, closed"
    for case, piece, every, chunked in (("body at 1 byte/s (Content-Length)", 1, 1.0, False),
                                        ("body 1 KiB every 4 s (chunked)", 1024, 4.0, True)):
        got, took, closed = trickle(port, body, piece, every, most=BODY_TIMEOUT + 12, chunked=chunked)
        status, error = status_of(got), error_of(got)
        check(case, expected, f"{status} in {took:.1f} s{', closed' if closed else ', open'}: {error[:45]}",
              status == "408" and BODY_TIMEOUT - 0.5 < took < BODY_TIMEOUT + 3 and closed and "--body-timeout" in error)
    with socket.create_connection(("127.0.0.1", port)) as sock:  # the first round's: a body that stops
        t0 = time.monotonic()
        sock.sendall(head(100_000) + b"--" + BOUNDARY + b"\r\n")
        got = answer(sock, READ_TIMEOUT + 10)
    check("body that stalls (first round)", f"408 at ~{READ_TIMEOUT:g} s (--read-timeout)",
          f"{status_of(got)} in {time.monotonic() - t0:.1f} s: {error_of(got)[:40]}",
          status_of(got) == "408" and "stalled" in error_of(got))
    left = sum(1 for d in tmp.glob("mer-serve-*") for _ in d.iterdir())
    check("upload folder after the refused bodies", "empty", f"{left} files", left == 0)


def fast_uploads(port: int) -> str | None:
    """Uploads that must not be cut off; returns the job id of the song sent in pieces."""
    big = part(b"big.wav", bytes(40 << 20))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        t0 = time.monotonic()
        sock.sendall(head(len(big)).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + big)
        got = answer(sock, 60)
    check("40 MiB upload at full speed", f"200 (well under {BODY_TIMEOUT:g} s)",
          f"{status_of(got)} in {time.monotonic() - t0:.1f} s", status_of(got) == "200")
    wav = io.BytesIO()
    sf.write(wav, synth.clip(0.5, 0.5, 3.0, 16000, seed=1), 16000, format="WAV")
    song = part(b"song.wav", wav.getvalue())
    got, took, _ = trickle(port, song, len(song) // 8 + 1, 0.25, most=10)
    check("3 s song in 8 pieces over 2 s", "200", f"{status_of(got)} in {took:.1f} s", status_of(got) == "200")
    with contextlib.suppress(ValueError, KeyError, IndexError):
        return str(json.loads(got.partition(b"\r\n\r\n")[2])["jobs"][0]["id"])
    return None


def numbers(port: int) -> None:
    for case, path in (("audio id of 5000 digits", b"9" * 5000), ("audio id of 4301 digits", b"1" * 4301),
                       ("audio id '\u00b2' (a digit to isdigit)", b"%C2%B2"),
                       ("audio id 99999999999999999999 (first round)", b"9" * 20)):
        got = raw_get(port, b"/api/library/audio/" + path)
        error = error_of(got)
        check(f"GET {case}", "404, one-line JSON", f"{status_of(got)}: {error[:50]}",
              status_of(got) == "404" and error.startswith("no song") and "\n" not in error)
    for case, host in (("Host port of 5000 digits", b"127.0.0.1:" + b"9" * 5000),
                       ("Host port '\u00b2' (latin-1 0xB2)", b"127.0.0.1:\xb2"),
                       ("Host: evil.example (first round)", b"evil.example")):
        got = raw_get(port, b"/api/health", host)
        check(case, "421", f"{status_of(got)}: {error_of(got)[:50]}", status_of(got) == "421")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + b"9" * 5000
                     + b"\r\nContent-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
        got = answer(sock, 10)
    check("Content-Length of 5000 digits", "400 or 413, closed", f"{status_of(got)}: {error_of(got)[:50]}",
          status_of(got) in ("400", "413"))


def read_only(port: int, db: Path, music: Path) -> None:
    status, _, res = request(port, "GET", "/api/library/songs")
    songs = res.get("songs", []) if isinstance(res, dict) else []
    check("mer serve --library on a read-only folder", "200, 1 song", f"{status}, {len(songs)} songs",
          status == 200 and len(songs) == 1)
    if songs:
        status, _, _ = request(port, "GET", f"/api/library/audio/{songs[0]['id']}")
        check("its audio by id", "200", status, status == 200)
    found = run(*mer("search", str(db), "--va", "0.5,0.5", "--format", "json"))
    check("mer search on the read-only library", "exit 0, 1 song",
          f"{found.returncode}: {found.stdout.count('path')} songs {found.stderr.strip()[:50]}",
          found.returncode == 0 and found.stdout.count('"path"') == 1)
    listed = run(*mer("playlist", str(db), "--from", "happy", "--to", "calm", "--minutes", "1"))
    check("mer playlist on it", "exit 0", f"{listed.returncode} {listed.stderr.strip()[:60]}", listed.returncode == 0)
    indexed = run(*mer("index", str(music), "--db", str(db), "-q"))
    shown = indexed.stderr.strip().replace(str(db), "DB")
    check("mer index into it", "one line: the library is read-only", f"{indexed.returncode}: {shown[:70]}",
          indexed.returncode != 0 and indexed.stderr.count("\n") == 1 and "the library is read-only" in shown)
    listing = sorted(p.name for p in db.parent.iterdir())
    check("the read-only folder afterwards", "unchanged (no -wal, -shm)", ", ".join(listing),
          listing == ["music.sqlite", "song.wav"])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-") as t:
        tmp = Path(t)
        disk = tmp / "disk"
        disk.mkdir()
        db = make_library(disk)  # music.sqlite and song.wav
        (tmp / "music").mkdir()
        db.chmod(0o444)
        disk.chmod(0o555)
        try:
            probe = run(sys.executable, "-c", f"open({str(disk / 'probe')!r}, 'w')")
            check("a write into the read-only folder", "refused (the folder is really read-only)",
                  probe.stderr.strip().splitlines()[-1][:60] if probe.returncode else "allowed", probe.returncode != 0)
            with server("--max-upload-mb", "64", "--read-timeout", str(READ_TIMEOUT), "--body-timeout",
                        str(BODY_TIMEOUT), "--library", str(db), tmp=tmp) as (port, log):
                read_only(port, db, tmp / "music")
                trickles(port, tmp)
                song = fast_uploads(port)
                numbers(port)
                status, _, _ = request(port, "GET", "/api/health")
                check("after all that: health", "200", status, status == 200)
                job = wait_job(port, song, timeout=120) if song else {}
                check("the job of the song sent in pieces", "done", job.get("state", "no job"),
                      job.get("state") == "done")
            text = log.read_text()
            check("the server's log", "no traceback", f"{text.count('Traceback')} tracebacks, {len(text)} chars",
                  "Traceback" not in text)
        finally:
            disk.chmod(0o755)
            db.chmod(0o644)
    return CASES.report()


if __name__ == "__main__":
    sys.exit(main())
