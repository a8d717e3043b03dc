"""The web app behind ``mer serve``: a JSON API under ``/api/`` and the page that uses it.

API (documented by FastAPI at ``/docs``; the page uses nothing else):

- ``POST /api/predict`` (multipart, field ``files``, one or more) -> ``{"jobs": [{"id", "name"}]}``;
  413 over the size or file-count limit, 429 when too many jobs wait, nothing else disturbed;
- ``GET /api/jobs/{id}`` -> state, progress (0..1), result (what ``mer predict --format json``
  prints for one file) or error; ``GET /api/jobs`` -> every job still remembered;
- ``GET /api/models`` -> the model in use and the bundled ones; ``GET /api/health``;
- with ``--library DB``: ``GET /api/library/songs`` and ``GET /api/library/audio/{id}`` (audio
  by id from the index only, never by path; range requests for seeking).

With a token (``--token`` or ``$MER_TOKEN``) every API call and the page need it: header
``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (what the page and its audio use).
Everything the page loads ships in ``mer/serve/static`` (no internet needed).
"""

from __future__ import annotations

import contextlib
import hmac
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import MERError
from ..hub import Bundle, bundled_models
from .jobs import Busy, JobQueue

STATIC = Path(__file__).parent / "static"
CHUNK = 1 << 20


def create_app(predictor: Any, library: Any = None, token: str | None = None, max_upload_mb: float = 200,
               max_files: int = 50, max_jobs: int = 100, workers: int = 2) -> FastAPI:
    """The app for one loaded :class:`mer.Predictor` (and optionally a :class:`mer.library.Library`)."""
    queue = JobQueue(predictor, workers, max_jobs)
    limit = int(max_upload_mb * 1024 * 1024)
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        queue.close()  # finish running jobs, delete every upload

    app = FastAPI(title="mer", description="Music emotion recognition: valence, arousal and quadrant of audio.",
                  version=predictor.bundle.version, lifespan=lifespan)
    app.state.queue, app.state.library = queue, library

    @app.middleware("http")
    async def guard(request: Request, call_next):  # noqa: ANN001, ANN202
        path = request.url.path
        if token and (path.startswith("/api/") or path == "/") and not _authorised(request, token):
            return JSONResponse({"error": "this server needs its token: add ?token=TOKEN to the address "
                                          "(or the header Authorization: Bearer TOKEN)"}, status_code=401)
        if path == "/api/predict":
            length = int(request.headers.get("content-length") or 0)
            if length > limit * max_files + CHUNK:
                return JSONResponse({"error": f"upload too large: at most {max_upload_mb:g} MB per file and "
                                              f"{max_files} files per upload"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": predictor.name, "jobs_active": queue.active()}

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {"current": {**predictor.bundle.provenance(), "quadrant_probabilities": _has_quadrants(predictor)},
                "bundled": [{"name": n, "version": Bundle.resolve(n).version} for n in bundled_models()],
                "library": library is not None,
                "limits": {"max_upload_mb": max_upload_mb, "max_files": max_files, "max_jobs": max_jobs}}

    @app.post("/api/predict")
    async def predict(request: Request) -> dict[str, Any]:
        form = await request.form(max_files=max_files + 1, max_fields=max_files + 10)
        uploads = [f for f in form.getlist("files") if hasattr(f, "read")]
        if not uploads:
            raise HTTPException(400, "no files: send one or more audio files in the form field 'files'")
        if len(uploads) > max_files:
            raise HTTPException(413, f"{len(uploads)} files in one upload; at most {max_files}")
        try:
            queue.reserve(len(uploads))
        except Busy as exc:
            raise HTTPException(429, str(exc)) from None
        saved: list[tuple[str, str, Path, int]] = []
        try:
            for up in uploads:
                job_id = queue.new_id()
                target = queue.path_for(job_id, up.filename or "")
                size = 0
                with open(target, "wb") as fh:
                    while chunk := await up.read(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise HTTPException(413, f"{_name(up.filename)} is larger than {max_upload_mb:g} MB "
                                                     "(mer serve --max-upload-mb N)")
                        fh.write(chunk)
                saved.append((job_id, up.filename or "upload", target, size))
        except BaseException:
            for *_, target, _ in saved:
                target.unlink(missing_ok=True)
            if "target" in locals():
                target.unlink(missing_ok=True)
            raise
        finally:
            await form.close()
        jobs = [queue.submit(*s) for s in saved]
        return {"jobs": [{"id": j.id, "name": j.name} for j in jobs]}

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": [j.public() for j in queue.jobs.values()]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        j = queue.jobs.get(job_id)
        if j is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are forgotten after a while)")
        return j.public()

    @app.get("/api/library/songs")
    def songs() -> dict[str, Any]:
        if library is None:
            raise HTTPException(404, "no library: start the server with --library music.sqlite")
        return {"songs": library.songs()}

    @app.get("/api/library/audio/{song_id}")
    def audio(song_id: int) -> FileResponse:
        if library is None:
            raise HTTPException(404, "no library: start the server with --library music.sqlite")
        try:
            path = library.audio_path(song_id)
        except (KeyError, MERError):
            path = None
        if path is None or not Path(path).is_file():
            raise HTTPException(404, f"no song {song_id} in the library")
        return FileResponse(path)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _authorised(request: Request, token: str) -> bool:
    given = request.query_params.get("token") or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:]
    return hmac.compare_digest(given.encode(), token.encode())


def _has_quadrants(predictor: Any) -> bool:
    return bool(predictor.bundle.meta.get("model_args", {}).get("quadrant"))


def _name(name: str | None) -> str:
    from .jobs import display_name

    return display_name(name)
