"""Many files through one model: worker processes, input order, one failure never stops a batch.

:func:`run` is what :func:`mer.infer.predictor.run_batch` (``mer predict``, ``mer index``,
:meth:`mer.Predictor.predict_many`) uses. It takes a picklable ``make(threads)`` that builds the
predictor, so this module knows nothing of the model: each worker process
(:func:`mer.workers.pool`: spawned, and gone when the parent dies) calls it once; the files are
handed out one at a time and the results come back in input order. A file that
cannot be processed becomes a :class:`Result` with its one-line error (and, for ``--debug``,
the traceback); warnings raised while predicting it travel with it.
"""

from __future__ import annotations

import os
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import AudioError, MERError

#: a worker process's predictor, built once by :func:`_init` (the pool's initializer)
_PREDICTOR: Any = None


@dataclass
class Result:
    path: str
    prediction: Any = None  # a mer.Prediction, or None when the file failed
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    traceback: str | None = None

    def error_object(self) -> MERError:
        return AudioError(self.error or f"{self.path}: failed")


def _init(make: Callable[[int], Any], threads: int) -> None:
    global _PREDICTOR
    _PREDICTOR = make(threads)


def predict_file(predictor: Any, path: str, options: dict[str, Any]) -> Result:
    """Predict one file with ``predictor``; never raises: a failure becomes the Result's one-line
    error (the batch goes on), and warnings raised meanwhile travel with it. Also what each
    Ray worker of ``mer index --ray`` runs per file."""
    res = Result(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res.prediction = predictor(path, **options)
        except MERError as exc:
            res.error = str(exc)
        except MemoryError:
            res.error = f"{path}: out of memory while decoding; split the file or free memory"
        except Exception as exc:  # noqa: BLE001  (one line per file, the batch goes on; --debug shows why)
            res.error = f"{path}: could not be processed ({type(exc).__name__}: {exc})"
            res.traceback = traceback.format_exc()
    res.warnings = [str(w.message) for w in caught]
    return res


def _one(job: tuple[str, dict[str, Any]]) -> Result:
    path, options = job
    return predict_file(_PREDICTOR, path, options)


def run(make: Callable[[int], Any], paths: list[str], workers: int = 0,
        options: dict[str, Any] | None = None) -> Iterator[Result]:
    """:class:`Result` s for ``paths`` in input order (see the module docstring); ``make(threads)``
    builds a predictor (called ``predictor(path, **options)``) using that many threads."""
    options = options or {}
    workers = workers or min(len(paths), os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 3:
        _init(make, max(1, os.cpu_count() or 1))
        for p in paths:
            yield _one((p, options))
        return
    from concurrent.futures.process import BrokenProcessPool

    from ..workers import pool, thread_env  # here: one file (most cold starts) needs no pool

    threads = max(1, (os.cpu_count() or 1) // workers)
    todo = list(paths)
    with thread_env(threads):
        while todo:  # a worker that dies (out of memory, killed) fails its file; a new pool takes the rest
            executor = pool(workers, _init, (make, threads))
            futures = [executor.submit(_one, (p, options)) for p in todo]
            done = 0
            try:
                for fut in futures:
                    yield fut.result()
                    done += 1
                todo = []
            except BrokenProcessPool:
                lost = todo[done]
                yield Result(lost, error=f"{lost}: the worker process predicting it died (out of memory, or killed); "
                                         "the batch goes on without it")
                todo = todo[done + 1:]
            finally:
                executor.shutdown(wait=False, cancel_futures=True)
