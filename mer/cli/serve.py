"""``mer serve``: the web page (FastAPI on uvicorn), bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from ..errors import ConfigError, MERWarning, require
from ._args import add_model, resolve_model


def _serve(args: argparse.Namespace) -> int:
    require("fastapi", "mer serve")
    require("uvicorn", "mer serve")
    t0 = time.perf_counter()
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: choose a port between 1 and 65535")
    if args.max_upload_mb <= 0 or args.max_files < 1 or args.max_jobs < 1 or args.workers < 1:
        raise ConfigError("--max-upload-mb, --max-files, --max-jobs and --workers must be positive")
    token = args.token or os.environ.get("MER_TOKEN") or None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(f"--host {args.host}: the page and its API are reachable from other machines"
                      + ("" if token else "; anyone who can reach it can upload files (set --token)"),
                      MERWarning, stacklevel=2)
    import uvicorn

    from ..infer.predictor import Predictor
    from ..serve.app import create_app

    library = None
    if args.library:
        from ..library import Library

        library = Library(args.library)
    bundle = resolve_model(args.model)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    predictor = Predictor(bundle, args.device, args.backend, threads)
    app = create_app(predictor, library, token, args.max_upload_mb, args.max_files, args.max_jobs, args.workers)
    url = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}/"
    print(f"mer serve: {url}{'?token=' + token if token else ''}  (model {bundle.name}, "
          f"ready in {time.perf_counter() - t0:.1f} s; Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a web page to hear and see the emotion of songs",
                       description="Serve the page and its JSON API (/docs documents it). Binds 127.0.0.1 unless "
                                   "--host says otherwise; opens no browser by itself.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_model(p)
    p.add_argument("--library", metavar="DB", help="a music library from `mer index` to browse on the page")
    p.add_argument("--token", help="require this token on every API call and the page (or set $MER_TOKEN)")
    p.add_argument("--max-upload-mb", type=float, default=200, help="largest file accepted (default 200 MB)")
    p.add_argument("--max-files", type=int, default=50, help="files per upload (default 50)")
    p.add_argument("--max-jobs", type=int, default=100, help="files waiting or running at once (default 100)")
    p.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                   help="files predicted at once (default: 2, or 1 on a single core)")
    p.set_defaults(handler=_serve)
