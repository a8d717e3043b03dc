"""``mer serve``: the web page (FastAPI on uvicorn), bound to 127.0.0.1 unless told otherwise.

Everything that can be wrong is found before the server says it is ready: the limits
(finite, positive), the token file, the port (bound here and handed to uvicorn, so no other
program can take it in between), the library (opened and checked) and the model.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
import sys
import time
import warnings
from pathlib import Path

from ..errors import ConfigError, MERWarning, UsageError, require
from ._args import add_model, resolve_model


def _positive(flag: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} {value}: give a positive number (a finite one, e.g. {flag} 30)")


def _token(args: argparse.Namespace) -> str | None:
    """The token from --token, --token-file or $MER_TOKEN (the last two keep it out of `ps`)."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {args.token_file}: cannot read it ({getattr(exc, 'strerror', None) or exc}); "
                              "give a readable text file holding the token") from None
        if not token:
            raise ConfigError(f"--token-file {args.token_file}: the file is empty; write the token into it")
        return token
    return args.token or os.environ.get("MER_TOKEN") or None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or a :class:`ConfigError` saying why not."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address or name of this machine ({exc.strerror}); "
                          "give e.g. --host 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"--host {host}: port {port} is in use; choose another with --port") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"--port {port}: not allowed to listen on port {port} (ports below 1024 need root); "
                              "choose another with --port") from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                          "check the address is one of this machine's") from None
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace) -> int:
    require("fastapi", "mer serve")
    require("uvicorn", "mer serve")
    t0 = time.perf_counter()
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: choose a port between 1 and 65535")
    for flag in ("max_upload_mb", "max_request_mb", "max_minutes", "read_timeout", "body_timeout"):
        _positive("--" + flag.replace("_", "-"), getattr(args, flag))
    if args.max_files < 1 or args.max_jobs < 1 or args.workers < 1:
        raise UsageError("--max-files, --max-jobs and --workers must be 1 or more")
    token = _token(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(f"--host {args.host}: the page and its API are reachable from other machines"
                      + ("" if token else "; anyone who can reach it can upload files (set --token)"),
                      MERWarning, stacklevel=2)
    sock = listen(args.host, args.port)
    try:
        from ..infer.predictor import Predictor
        from ..serve.app import create_app, run

        library = None
        if args.library:
            from ..library import Library
            from ..library.store import check_integrity

            library = Library(args.library)  # missing, not a library, too new, corrupt: one line, now
            check_integrity(library.conn, args.library)
            library.songs()
        bundle = resolve_model(args.model, args.trust_remote_code)
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        predictor = Predictor(bundle, args.device, args.backend, threads)
        app = create_app(predictor, library, token, args.max_upload_mb, args.max_files, args.max_jobs, args.workers,
                         max_minutes=args.max_minutes, max_request_mb=args.max_request_mb, host=args.host,
                         allow_hosts=args.allow_host, timeout=args.read_timeout, body_timeout=args.body_timeout)
        url = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}/"
        print(f"mer serve: {url}{'?token=' + token if token else ''}  (model {bundle.name}, "
              f"ready in {time.perf_counter() - t0:.1f} s; Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            run(app, sock, args.read_timeout)
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
            pass
    finally:
        sock.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a web page to hear and see the emotion of songs",
                       description="Serve the page and its JSON API (/docs documents it). Binds 127.0.0.1 unless "
                                   "--host says otherwise; opens no browser by itself. Answers only requests that "
                                   "name it (Host), takes uploads only from its own page (Origin), and bounds what "
                                   "one request may cost (bytes while streaming, decoded minutes, time).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                                                       "0.0.0.0 or :: accept any Host name unless --allow-host)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (repeatable), e.g. the machine's name on the LAN")
    add_model(p)
    p.add_argument("--library", metavar="DB", help="a music library from `mer index` to browse on the page")
    p.add_argument("--token", help="require this token on every API call, the page and /docs "
                                   "(or set $MER_TOKEN, or --token-file: both keep it out of `ps`)")
    p.add_argument("--token-file", metavar="PATH", help="read the token from this file")
    p.add_argument("--max-upload-mb", type=float, default=200, help="largest file accepted (default 200 MB)")
    p.add_argument("--max-request-mb", type=float, default=None,
                   help="largest upload in all (default: --max-files times --max-upload-mb)")
    p.add_argument("--max-files", type=int, default=50, help="files per upload (default 50)")
    p.add_argument("--max-minutes", type=float, default=30,
                   help="longest audio decoded per file, in minutes (default 30); longer files get an error")
    p.add_argument("--max-jobs", type=int, default=100, help="files waiting or running at once (default 100)")
    p.add_argument("--read-timeout", type=float, default=30, metavar="SECONDS",
                   help="how long a client may stall while sending a request's headers or an upload (default 30)")
    p.add_argument("--body-timeout", type=float, default=60, metavar="SECONDS",
                   help="how long one upload may take to arrive in all, however steadily it trickles (default 60; "
                        "raise it for many large files over a slow network)")
    p.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                   help="files predicted at once (default: 2, or 1 on a single core)")
    p.set_defaults(handler=_serve)
