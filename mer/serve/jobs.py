"""Prediction jobs of the web page: a bounded queue, a few worker threads, one model.

Each uploaded file becomes a :class:`Job` (``queued`` -> ``running`` -> ``done`` | ``error``)
with a progress fraction (decoding reports as it goes, so a 10-minute file shows progress).
The model is loaded once (:class:`mer.Predictor`) and shared by ``workers`` threads: the
engines release the GIL while they compute, and the web server's event loop stays free to
answer (``/api/health`` included) while files are predicted.

Uploads live in a private temporary folder (mode 0700) under names the server makes
(the job id, no extension: the type is judged by decoding); no user-supplied name ever
becomes a path. :func:`receive` streams a multipart body straight into that folder, counting
bytes as they arrive: it stops reading at the first byte over a limit (per file, per request)
and keeps nothing of a refused upload. A job's file is deleted when the job ends, the folder
when the server shuts down.

Limits: bytes per file and per upload, files per upload and jobs waiting or running at once
(beyond them: :class:`TooLarge`, :class:`Busy`), seconds an upload's body may stall and seconds it
may take in all (beyond them: :class:`Stalled`, so a body trickled a byte at a time cannot hold
its connection for ever), and decoded minutes per file (checked from the header before decoding
and enforced while decoding, so a header that lies is stopped too).
Each job remembers the browser that sent it (``owner``), so one client's list shows its own.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, AsyncIterator

from ..errors import MERError

try:  # python-multipart >= 0.0.13 names its module python_multipart; older releases, multipart
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover
    from multipart.multipart import MultipartParser, parse_options_header  # type: ignore[no-redef]

MB = 1024 * 1024
SLACK_SECONDS = 1.0  # decoded past the --max-minutes cap, so a file that reaches it is told from one that ends there


class Busy(MERError):
    """Too many jobs queued; try again later (HTTP 429)."""


class TooLarge(MERError):
    """An upload over a size or file-count limit (HTTP 413); nothing of it is kept."""


class BadUpload(MERError):
    """A body that is not a multipart upload with files (HTTP 400)."""


class Stalled(MERError):
    """A client stopped sending its upload, or sent it too slowly (HTTP 408); nothing of it is kept."""


@dataclass
class Job:
    id: str
    name: str  # what the user called the file: shown, never used as a path
    size: int
    owner: str = ""  # the browser (cookie) that uploaded it; never shown
    state: str = "queued"  # queued, running, done, error
    progress: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    seconds: float | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "state": self.state,
                "progress": round(self.progress, 3), "result": self.result, "error": self.error,
                "warnings": self.warnings, "seconds": self.seconds}


@dataclass(frozen=True)
class Limits:
    """What one upload may cost: ``file_mb`` per file, ``request_mb`` in all, ``files`` files, at
    most ``timeout`` seconds of silence while its body arrives and at most ``body_timeout`` seconds
    for the whole body (None: no bound)."""

    file_mb: float = 200
    request_mb: float | None = None  # None: files * file_mb
    files: int = 50
    timeout: float = 30.0
    body_timeout: float | None = 60.0

    @property
    def file_bytes(self) -> int:
        return int(self.file_mb * MB)

    @property
    def request_bytes(self) -> int:
        """The body's limit: the files' bytes plus room for the multipart headers around them."""
        mb = self.files * self.file_mb if self.request_mb is None else self.request_mb
        return int(mb * MB) + 64 * 1024 + 1024 * self.files

    def describe(self) -> dict[str, Any]:
        return {"max_upload_mb": self.file_mb, "max_files": self.files,
                "max_request_mb": self.files * self.file_mb if self.request_mb is None else self.request_mb,
                "body_timeout_s": self.body_timeout}


def display_name(name: str | None) -> str:
    """A user's file name made safe to show: no folders, no control characters, at most 200 characters."""
    name = (name or "upload").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\x00")
    return (name or "upload")[:200]


class JobQueue:
    """Bounded jobs over one shared predictor (see the module docstring). ``max_minutes``: the
    longest audio a job decodes (None: no limit)."""

    def __init__(self, predictor: Any, workers: int = 2, max_jobs: int = 100, keep: int = 1000,
                 max_minutes: float | None = 30) -> None:
        self.predictor, self.max_jobs, self.keep, self.max_minutes = predictor, max_jobs, keep, max_minutes
        self.folder = Path(tempfile.mkdtemp(prefix="mer-serve-"))  # 0700: private to this user
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mer-job")

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in self.jobs.values())

    def reserve(self, n: int) -> None:
        """Raise :class:`Busy` unless ``n`` more jobs fit."""
        with self.lock:
            if self.active() + n > self.max_jobs:
                raise Busy(f"{self.active()} files are waiting or running (limit {self.max_jobs}); try again when "
                           "some have finished")

    def path_for(self, job_id: str, name: str = "") -> Path:
        """Where an upload is kept: the job id only, no extension, so its type is judged by
        decoding its content, never by what the user named it."""
        return self.folder / job_id

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def submit(self, job_id: str, name: str, path: Path, size: int, owner: str = "") -> Job:
        job = Job(job_id, display_name(name), size, owner)
        with self.lock:
            self.jobs[job_id] = job
            self._forget_old()
        self.pool.submit(self._run, job, path)
        return job

    def owned_by(self, owner: str | None) -> list[Job]:
        """The jobs one client sent (every job for ``owner=None``)."""
        return [j for j in list(self.jobs.values()) if owner is None or (owner and j.owner == owner)]

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.state in ("done", "error")]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self.jobs) - self.keep)]:
            del self.jobs[j.id]

    def _too_long(self, name: str, minutes: float | None = None) -> MERError:
        length = f"{minutes:.1f} minutes long" if minutes is not None else "longer than that"
        return MERError(f"{name}: {length}; this server decodes at most {self.max_minutes:g} minutes per file "
                        "(mer serve --max-minutes N); cut the file or predict it with `mer predict`")

    def _predict(self, job: Job, path: Path, progress: Any) -> Any:
        """The prediction, decoding at most ``max_minutes`` (plus a second, to tell a longer file)."""
        if self.max_minutes is None:
            return self.predictor(path, progress=progress)
        from ..audio import info

        cap = self.max_minutes * 60
        meta = info(path)  # the header: a file that says it is too long is refused before decoding
        if meta.duration > cap:
            raise self._too_long(job.name, meta.duration / 60)
        # libsndfile stops at the frame count its header gives (mp3 excepted: an estimate); for
        # every other file the decoder is told to stop at the cap, whatever the header says
        exact = meta.decoder == "sndfile" and meta.frames > 0 and meta.format not in ("MPEG", "MP3")
        pred = self.predictor(path, duration=None if exact else cap + SLACK_SECONDS, progress=progress)
        if pred.duration > cap:
            raise self._too_long(job.name)
        return pred

    def _run(self, job: Job, path: Path) -> None:
        job.state = "running"
        t0 = time.perf_counter()

        def progress(fraction: float) -> None:
            job.progress = 0.9 * fraction  # decoding and features; the network takes the rest

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pred = self._predict(job, path, progress)
            job.warnings = [str(w.message).replace(str(path), job.name) for w in caught]
            result = pred.to_dict()
            result["path"] = job.name
            job.result, job.state = result, "done"
        except MERError as exc:
            job.error, job.state = str(exc).replace(str(path), job.name), "error"
        except MemoryError:
            job.error, job.state = f"{job.name}: out of memory while decoding", "error"
        except Exception as exc:  # noqa: BLE001  (one job fails, the server goes on)
            job.error, job.state = f"{job.name}: could not be processed ({type(exc).__name__})", "error"
            traceback.print_exc()
        finally:
            job.progress, job.seconds = 1.0, round(time.perf_counter() - t0, 3)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop taking work, finish what runs, delete every upload."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.folder, ignore_errors=True)


# -- receiving an upload -----------------------------------------------------------------------

Saved = tuple[str, str, Path, int]  # job id, the user's name for the file, where it is, bytes


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a Content-Type header, or :class:`BadUpload`."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise BadUpload("no files: send one or more audio files in the form field 'files' (multipart/form-data)")
    return options[b"boundary"]


class _Parts:
    """The callbacks of python-multipart's streaming parser: each file part of the field
    ``files`` goes straight into its job's upload file, its bytes counted as they come."""

    def __init__(self, queue: JobQueue, limits: Limits) -> None:
        self.queue, self.limits = queue, limits
        self.saved: list[Saved] = []
        self.file: tuple[str, str, Path, IO[bytes]] | None = None  # the part being written
        self.size = 0
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value = bytearray(), bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.begin, "on_header_field": lambda d, s, e: self.field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self.value.extend(d[s:e]), "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data, "on_part_end": self.end}

    def begin(self) -> None:
        self.headers = {}

    def header_end(self) -> None:
        self.headers[bytes(self.field).strip().lower()] = bytes(self.value).strip()
        self.field, self.value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") != b"files" or b"filename" not in options:
            return  # another form field: read past it (its bytes count towards the upload's limit)
        if len(self.saved) + 1 > self.limits.files:
            raise TooLarge(f"more than {self.limits.files} files in one upload; at most {self.limits.files} "
                           "(mer serve --max-files N)")
        self.queue.reserve(len(self.saved) + 1)
        job_id = self.queue.new_id()
        name = options[b"filename"].decode("utf-8", "replace")
        path = self.queue.path_for(job_id)
        self.file, self.size = (job_id, name, path, open(path, "wb")), 0

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.file is None:
            return
        self.size += end - start
        if self.size > self.limits.file_bytes:
            raise TooLarge(f"{display_name(self.file[1])} is larger than {self.limits.file_mb:g} MB "
                           "(mer serve --max-upload-mb N); nothing of this upload was kept")
        self.file[3].write(data[start:end])

    def end(self) -> None:
        if self.file is not None:
            job_id, name, path, fh = self.file
            fh.close()
            self.saved.append((job_id, name, path, self.size))
            self.file = None

    def discard(self) -> None:
        """Delete everything this upload wrote (the part being written too)."""
        if self.file is not None:
            self.file[3].close()
            self.file[2].unlink(missing_ok=True)
            self.file = None
        for *_, path, _ in self.saved:
            path.unlink(missing_ok=True)
        self.saved = []


async def receive(queue: JobQueue, content_type: str, chunks: AsyncIterator[bytes], limits: Limits) -> list[Saved]:
    """Stream a multipart body into ``queue``'s folder; return the files it held.

    Reading stops at the first byte over a limit (:class:`TooLarge`), when the queue is full
    (:class:`Busy`), when the body is malformed (:class:`BadUpload`), when it stops arriving
    for ``limits.timeout`` seconds or has not all arrived ``limits.body_timeout`` seconds after
    reading began (:class:`Stalled`); then nothing of the upload is kept."""
    parts = _Parts(queue, limits)
    parser = MultipartParser(boundary_of(content_type), parts.callbacks())  # type: ignore[arg-type]
    total = 0
    loop = asyncio.get_running_loop()
    deadline = None if limits.body_timeout is None else loop.time() + limits.body_timeout
    try:
        while True:
            wait = limits.timeout if deadline is None else min(limits.timeout, deadline - loop.time())
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                chunk = await asyncio.wait_for(chunks.__anext__(), wait)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                if wait < limits.timeout:  # the whole body's deadline, not a pause, ran out
                    raise Stalled(f"upload too slow: not all of it arrived within {limits.body_timeout:g} s "
                                  "(mer serve --body-timeout N); nothing was kept; send fewer files at once") from None
                raise Stalled(f"upload stalled: no data for {limits.timeout:g} s; nothing was kept") from None
            total += len(chunk)
            if total > limits.request_bytes:
                raise TooLarge(f"upload larger than {limits.describe()['max_request_mb']:g} MB in all "
                               "(mer serve --max-request-mb N); send fewer files at once")
            try:
                parser.write(chunk)
            except (MERError, OSError):
                raise
            except Exception as exc:  # noqa: BLE001  (python-multipart's parse errors)
                raise BadUpload(f"malformed upload ({exc}); send the files as multipart/form-data") from None
        parser.finalize()
        if parts.file is not None:
            raise BadUpload("the upload ended in the middle of a file; send it again")
        if not parts.saved:
            raise BadUpload("no files: send one or more audio files in the form field 'files'")
    except BaseException:
        parts.discard()
        raise
    return parts.saved
