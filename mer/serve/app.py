"""The web app behind ``mer serve``: a JSON API under ``/api/`` and the page that uses it.

API (documented by FastAPI at ``/docs``; the page uses nothing else):

- ``POST /api/predict`` (multipart, field ``files``, one or more) -> ``{"jobs": [{"id", "name"}]}``;
  the body is streamed to disk and counted as it arrives: 413 at the first byte over the size
  (per file, per upload) or file-count limit, 429 when too many jobs wait, 408 when the body
  stalls or takes longer than the body timeout in all; a refused upload leaves nothing behind;
- ``GET /api/jobs/{id}`` -> state, progress (0..1), result (what ``mer predict --format json``
  prints for one file) or error; ``GET /api/jobs`` -> the jobs this browser sent (a random
  ``mer_client`` cookie, HttpOnly, SameSite=Strict); ``?all=1``: every job, for the token holder;
- ``GET /api/models`` -> the model in use, the bundled ones and the limits; ``GET /api/health``;
- with ``--library DB``: ``GET /api/library/songs`` (each song with its ``name``: "Artist - Title" from its
  tags, else the file name, as ``mer playlist`` writes it) and ``GET /api/library/audio/{id}`` (audio
  by id from the index only, never by path; range requests for seeking; an id that is not
  a SQLite integer in ASCII digits is 404).

A local server is still a server. Every request must name this server in its ``Host`` header
(127.0.0.1, localhost, [::1], the ``--host`` address and each ``--allow-host``; any Host when
bound to 0.0.0.0 or :: without ``--allow-host``), else 421: a page on another site that re-points
its DNS name at 127.0.0.1 gets nothing. Uploads (every state-changing request) must come from
the page itself (``Origin`` / ``Sec-Fetch-Site``), else 403, and the API refuses cross-site
reads. Every response says ``nosniff``, may not be framed, and the page runs under a
Content-Security-Policy that allows only its own scripts.

With a token (``--token``, ``--token-file`` or ``$MER_TOKEN``) every API call, the page and
``/docs`` need it: header ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (what the page and
its audio use). Everything the page loads ships in ``mer/serve/static`` (no internet needed).
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Iterable
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from ..errors import MERError
from ..bundle import Bundle, bundled_models
from ..library.playlist import display_name
from .jobs import BadUpload, Busy, JobQueue, Limits, Stalled, TooLarge, receive

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
COOKIE = "mer_client"
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{16,64}")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
GUARDED = ("/api/", "/docs", "/openapi.json")  # besides "/": what needs the token, and refuses cross-site reads
#: the page's policy: its own scripts only (no inline script); inline styles, because the page and
#: wavesurfer set some; audio, waveforms and downloads from blob: URLs of the user's own files
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = "frame-ancestors 'none'"  # /docs is FastAPI's Swagger UI, which loads its code from a CDN
HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "Cross-Origin-Resource-Policy": "same-origin"}


def create_app(predictor: Any, library: Any = None, token: str | None = None, max_upload_mb: float = 200,
               max_files: int = 50, max_jobs: int = 100, workers: int = 2, max_minutes: float | None = 30,
               max_request_mb: float | None = None, host: str = "127.0.0.1", allow_hosts: Iterable[str] = (),
               timeout: float = 30.0, body_timeout: float | None = 60.0) -> FastAPI:
    """The app for one loaded :class:`mer.Predictor` (and optionally a :class:`mer.library.Library`).

    ``host``/``allow_hosts``: the names the ``Host`` header may give (see the module docstring);
    ``timeout``: seconds an upload's body may stall; ``body_timeout``: seconds the whole body may
    take to arrive (None: no bound)."""
    queue = JobQueue(predictor, workers, max_jobs, max_minutes=max_minutes)
    limits = Limits(max_upload_mb, max_request_mb, max_files, timeout, body_timeout)
    hosts = allowed_hosts(host, allow_hosts)
    trusted = frozenset(n for n in (host_name(h) for h in allow_hosts) if n)  # pages there may upload too

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        queue.close()  # finish running jobs, delete every upload

    app = FastAPI(title="mer", description="Music emotion recognition: valence, arousal and quadrant of audio.",
                  version=predictor.bundle.version, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.queue, app.state.library, app.state.hosts = queue, library, hosts

    @app.middleware("http")
    async def guard(request: Request, call_next):  # noqa: ANN001, ANN202
        refused = _refusal(request, hosts, token, trusted)
        response = refused or await call_next(request)
        path = request.url.path
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if path.startswith("/docs") else CSP)
        if not refused and _client(request) is None and request.headers.get("sec-fetch-site") not in (
                "cross-site", "same-site"):  # a cross-site visit withholds a Strict cookie: keep it, make none
            response.set_cookie(COOKIE, request.state.client, httponly=True, samesite="strict", path="/")
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server's log has the details"},
                            status_code=500)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json" + (f"?token={quote(token)}" if token else ""),
                                   title="mer API")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": predictor.name, "jobs_active": queue.active()}

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {"current": {**predictor.bundle.provenance(), "quadrant_probabilities": _has_quadrants(predictor)},
                "bundled": [{"name": n, "version": Bundle.resolve(n).version} for n in bundled_models()],
                "library": library is not None,
                "limits": {**limits.describe(), "max_jobs": max_jobs, "max_minutes": max_minutes}}

    @app.post("/api/predict")
    async def predict(request: Request) -> Any:
        length = request.headers.get("content-length", "")
        declared = number(length, digits=18)  # None for 5000 digits: more than any limit, not a crash
        try:
            if length.isascii() and length.isdigit() and (declared is None or declared > limits.request_bytes):
                size = f"{declared / 2**20:.1f} MB" if declared is not None else f"{len(length)} digits of bytes"
                raise TooLarge(f"upload too large: {size}; at most {max_upload_mb:g} MB per "
                               f"file and {limits.describe()['max_request_mb']:g} MB per upload "
                               "(mer serve --max-upload-mb N, --max-request-mb N)")
            queue.reserve(1)
            saved = await receive(queue, request.headers.get("content-type", ""), _body(request), limits)
        except (TooLarge, Busy, BadUpload, Stalled, ClientDisconnect, OSError) as exc:
            codes: dict[type, int] = {TooLarge: 413, Busy: 429, BadUpload: 400, Stalled: 408}
            status = codes.get(type(exc), 400)
            message = str(exc) or "the upload was cut off; send it again"
            if isinstance(exc, OSError):
                status, message = 507, f"could not store the upload ({exc.strerror or exc}); try again later"
            # the rest of a refused body is not wanted: close the connection rather than read it
            return JSONResponse({"error": message}, status_code=status, headers={"Connection": "close"})
        jobs = [queue.submit(*s, owner=request.state.client) for s in saved]
        return {"jobs": [{"id": j.id, "name": j.name} for j in jobs]}

    @app.get("/api/jobs")
    def jobs(request: Request, all: bool = False) -> dict[str, Any]:  # noqa: A002  (the query's name)
        if all and not token:
            raise HTTPException(403, "every job is shown only to the token holder: start the server with --token "
                                     "(or --token-file) and ask with ?all=1")
        return {"jobs": [j.public() for j in queue.owned_by(None if all else request.state.client)]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        j = queue.jobs.get(job_id)  # ids are 128 random bits: whoever has one, sent the file
        if j is None:
            raise HTTPException(404, f"no job {job_id[:64]!r} (finished jobs are forgotten after a while)")
        return j.public()

    @app.get("/api/library/songs")
    def songs() -> dict[str, Any]:
        if library is None:
            raise HTTPException(404, "no library: start the server with --library music.sqlite")
        try:
            return {"songs": [{**s, "name": display_name(s)} for s in library.songs()]}
        except MERError as exc:
            raise HTTPException(503, str(exc)) from None

    @app.get("/api/library/audio/{song_id}")
    def audio(song_id: str) -> FileResponse:
        if library is None:
            raise HTTPException(404, "no library: start the server with --library music.sqlite")
        path, number_id = None, number(song_id)
        if number_id is not None and number_id < 2**63:  # a SQLite integer, else no such song
            try:
                path = library.audio_path(number_id)
            except (KeyError, ValueError, OverflowError, MERError):
                path = None
        if path is None or not Path(path).is_file():
            raise HTTPException(404, f"no song {song_id[:32]} in the library")
        return FileResponse(path)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# -- who may ask ---------------------------------------------------------------------------------

def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The names a request's ``Host`` may give (None: any, for a server bound to every address
    and given no ``--allow-host``)."""
    extra = {n for n in (host_name(e) for e in extra) if n}
    if host_name(host) in ANY_ADDRESS and not extra:
        return None
    return frozenset({*LOOPBACK, host_name(host) or "127.0.0.1", *extra})


def split_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header (or an address) as (name, port or None), any spelling: ``LocalHost:08000``
    -> ``("localhost", 8000)``, ``[::1]`` -> ``("::1", None)``; None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    elif value.count(":") > 1:  # a bare IPv6 address (as --host gives it)
        name, port = value, ""
    else:
        name, _, port = value.partition(":")
    if port and number(port, 5) is None:  # "²" and 5000 digits are malformed, not a crash
        return None
    return name.rstrip("."), number(port, 5) if port else None


def host_name(value: str) -> str | None:
    """The name of a ``Host`` header without its port (see :func:`split_host`)."""
    split = split_host(value)
    return split[0] if split else None


def _origin_matches(origin: str, host: str, scheme: str) -> bool:
    """Whether an ``Origin`` header names the server the request's ``Host`` names (same origin)."""
    default = {"http": 80, "https": 443}
    parts = urlsplit(origin)
    theirs, ours = split_host(parts.netloc), split_host(host)
    if parts.scheme not in default or theirs is None or ours is None:
        return False
    return (theirs[0], theirs[1] or default[parts.scheme]) == (ours[0], ours[1] or default.get(scheme, 80))


def _refusal(request: Request, hosts: frozenset[str] | None, token: str | None,
             trusted: frozenset[str] = frozenset()) -> JSONResponse | None:
    """The answer to a request this server must not serve, or None. Sets ``request.state.client``.
    ``trusted``: the ``--allow-host`` names, whose pages may upload (behind a proxy that rewrites Host)."""
    request.state.client = _client(request) or secrets.token_urlsafe(18)
    host = request.headers.get("host", "")
    if hosts is not None and host_name(host) not in hosts:
        shown = ", ".join(f"[{h}]" if ":" in h else h for h in sorted(hosts))
        return _refuse(421, f"Host {host[:100]!r} is not a name of this server (it answers to {shown}); open "
                            "it by one of those, or start it with --allow-host NAME")
    path, site = request.url.path, request.headers.get("sec-fetch-site")
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("origin")
        foreign = origin is not None and not _origin_matches(origin, host, request.url.scheme) and (
            (urlsplit(origin).hostname or "").rstrip(".") not in trusted)
        if foreign or (site and site not in ("same-origin", "none")):
            return _refuse(403, f"cross-site request refused (Origin {str(origin)[:100]}): only the mer page "
                                "itself may upload; open the page and drop the files there")
    elif site in ("cross-site", "same-site") and path.startswith(GUARDED):
        return _refuse(403, "cross-site request refused: the API answers the mer page only")
    if token and (path.startswith(GUARDED) or path == "/") and not _authorised(request, token):
        return _refuse(401, "this server needs its token: add ?token=TOKEN to the address "
                            "(or the header Authorization: Bearer TOKEN)")
    return None


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Connection": "close"})


def _client(request: Request) -> str | None:
    """This browser's id from its ``mer_client`` cookie (None when it has none, or a malformed one)."""
    value = request.cookies.get(COOKIE, "")
    return value if _COOKIE_VALUE.fullmatch(value) else None


def _authorised(request: Request, token: str) -> bool:
    given = request.query_params.get("token") or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:]
    return hmac.compare_digest(given.encode(), token.encode())


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives (what ``request.stream()`` gives, read by :func:`receive`)."""
    async for chunk in request.stream():
        if chunk:
            yield chunk


def number(text: str, digits: int = 19) -> int | None:
    """``text`` as a whole number when it is 1 to ``digits`` ASCII digits, else None. Path, query
    and header values go through it, never through ``int()`` alone, which raises ``ValueError``
    for ``"²"`` (a digit to ``str.isdigit``) and for more than 4300 digits."""
    if not 0 < len(text) <= digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _has_quadrants(predictor: Any) -> bool:
    return predictor.bundle.meta.capabilities.quadrant


# -- serving -----------------------------------------------------------------------------------

def run(app: FastAPI, sock: socket.socket, timeout: float = 30.0) -> None:
    """Serve ``app`` on a bound, listening socket with uvicorn until Ctrl-C. A client has
    ``timeout`` seconds to send each request's line and headers (uvicorn itself waits forever
    for a connection that sends part of them); idle keep-alive connections close after 5 s."""
    server(app, timeout).run(sockets=[sock])


def server(app: FastAPI, timeout: float = 30.0) -> Any:
    """The ``uvicorn.Server`` that :func:`run` runs (a test may run it in a thread and stop it by
    setting its ``should_exit``)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, timeout_keep_alive=5,
                            http=_header_deadline(timeout), lifespan="on")
    return uvicorn.Server(config)


def _header_deadline(seconds: float) -> type:
    """uvicorn's h11 protocol with a deadline for each request's headers (see :func:`run`)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineProtocol(H11Protocol):
        _deadline = None

        def connection_made(self, transport) -> None:  # noqa: ANN001
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # the headers are in; the app times the body
            elif self._deadline is None:
                self._arm()  # part of a next request: it has `seconds` to complete its headers

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return DeadlineProtocol
