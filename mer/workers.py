"""Worker processes that never outlive their parent (one place for every process pool of mer).

``mer predict``, feature extraction for training and ``mer convert`` run files in a
``ProcessPoolExecutor``. When the parent is killed (kill -9, or SIGTERM from a job scheduler,
whose default action ends the process without any cleanup), Python's pool workers would live
on, holding memory and, for ``convert``, still writing. :func:`pool` starts every worker with
a watchdog thread that ends the worker within ``WATCH_SECONDS`` once its parent is gone
(its parent process id changes), and uses the ``spawn`` start method, so workers behave the
same on every platform. :func:`thread_env` caps numpy's BLAS threads in the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterator

WATCH_SECONDS = 0.5


def _watch(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:  # re-parented: the parent died
            os._exit(1)


def _start(parent: int, init: Callable[..., Any] | None, args: tuple) -> None:
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="mer-parent-watch").start()
    if init is not None:
        init(*args)


def pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A spawn-context process pool whose workers exit when this process dies."""
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_start,
                               initargs=(os.getpid(), initializer, initargs))


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Cap the BLAS/OpenMP thread pools of worker processes (read when they import numpy).

    Without it every worker's numpy (the mel matmul) starts one thread per core, and N
    workers x N threads oversubscribe the CPU: `--model fast` ran at 368x instead of 629x
    on 2 cores. Variables the user has set are left alone."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    added = [n for n in names if n not in os.environ]
    os.environ.update({n: str(threads) for n in added})
    try:
        yield
    finally:
        for n in added:
            os.environ.pop(n, None)
