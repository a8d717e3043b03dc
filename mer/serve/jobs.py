"""Prediction jobs of the web page: a bounded queue, a few worker threads, one model.

Each uploaded file becomes a :class:`Job` (``queued`` -> ``running`` -> ``done`` | ``error``)
with a progress fraction (decoding reports as it goes, so a 10-minute file shows progress).
The model is loaded once (:class:`mer.Predictor`) and shared by ``workers`` threads: the
engines release the GIL while they compute, and the web server's event loop stays free to
answer (``/api/health`` included) while files are predicted.

Uploads live in a private temporary folder (mode 0700) under names the server makes
(the job id, no extension: the type is judged by decoding); no user-supplied name ever
becomes a path. A job's file is
deleted when the job ends, the folder when the server shuts down. Limits: files per upload
and jobs waiting or running at once (beyond them: :class:`Busy`).
"""

from __future__ import annotations

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
from typing import Any

from ..errors import MERError

class Busy(MERError):
    """Too many jobs queued; try again later (HTTP 429)."""


@dataclass
class Job:
    id: str
    name: str  # what the user called the file: shown, never used as a path
    size: int
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


def display_name(name: str | None) -> str:
    """A user's file name made safe to show: no folders, no control characters, at most 200 characters."""
    name = (name or "upload").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\x00")
    return (name or "upload")[:200]


class JobQueue:
    """Bounded jobs over one shared predictor (see the module docstring)."""

    def __init__(self, predictor: Any, workers: int = 2, max_jobs: int = 100, keep: int = 1000) -> None:
        self.predictor, self.max_jobs, self.keep = predictor, max_jobs, keep
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

    def path_for(self, job_id: str, name: str) -> Path:
        """Where an upload is kept: the job id only, no extension, so its type is judged by
        decoding its content, never by what the user named it."""
        return self.folder / job_id

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def submit(self, job_id: str, name: str, path: Path, size: int) -> Job:
        job = Job(job_id, display_name(name), size)
        with self.lock:
            self.jobs[job_id] = job
            self._forget_old()
        self.pool.submit(self._run, job, path)
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.state in ("done", "error")]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self.jobs) - self.keep)]:
            del self.jobs[j.id]

    def _run(self, job: Job, path: Path) -> None:
        job.state = "running"
        t0 = time.perf_counter()

        def progress(fraction: float) -> None:
            job.progress = 0.9 * fraction  # decoding and features; the network takes the rest

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pred = self.predictor(path, progress=progress)
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
