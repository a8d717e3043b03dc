"""``mer predict PATH...``: valence, arousal, quadrant and the 2 Hz curve of audio files.

Files and folders (searched recursively) are processed in input order; batches run in
worker processes (each loads the model once) and results are printed as they arrive, in
order. A file that cannot be read prints one ``mer: error:`` line on stderr and the batch
goes on; the exit status is 1 at the end if any file failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, MERError
from ._args import add_model, add_quiet, add_workers, resolve_model

_PREDICTOR = None


def _init_worker(model: str, device: str, threads: int, backend: str) -> None:
    global _PREDICTOR
    from ..infer.predictor import Predictor

    _PREDICTOR = Predictor(model, device, backend, threads)


def _predict_one(path: str) -> tuple[str, Any, list[str]]:
    """("ok", Prediction, warnings) or ("error", message, warnings); never raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", _PREDICTOR(path))
        except MERError as exc:
            result = ("error", str(exc))
        except MemoryError:
            result = ("error", f"{path}: out of memory while decoding; split the file or free memory")
        except Exception as exc:  # noqa: BLE001  (one line per file, the batch goes on)
            result = ("error", f"{path}: could not be processed ({type(exc).__name__}: {exc})")
    return (*result, [str(w.message) for w in caught])


def _results(files: list[Path], args: argparse.Namespace) -> Iterator[tuple[str, Any, list[str]]]:
    workers = args.workers or min(len(files), os.cpu_count() or 1)
    if workers <= 1 or len(files) < 3:
        _init_worker(args.model, args.device, max(1, os.cpu_count() or 1), args.backend)
        for f in files:
            yield _predict_one(str(f))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    with _thread_env(threads), ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                                   initializer=_init_worker,
                                                   initargs=(args.model, args.device, threads, args.backend)) as pool:
        yield from pool.map(_predict_one, [str(f) for f in files], chunksize=1)


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
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


def _expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    from ..audio import find_audio

    files, errors = [], []
    for p in paths:
        try:
            found = find_audio([p])
        except MERError as exc:
            errors.append(str(exc))
            continue
        if not found:
            errors.append(f"{p}: no audio files in this folder")
        files += found
    return files, errors


class Writer:
    """Prints results as they come, in one of the formats."""

    COLUMNS = ("path", "valence", "arousal", "quadrant", "quadrant_words", "duration", "p_q1", "p_q2", "p_q3",
               "p_q4", "confidence", "model", "weights_sha1")

    def __init__(self, fmt: str, scale: str, out=sys.stdout) -> None:  # noqa: ANN001
        self.fmt, self.scale, self.out, self.n = fmt, scale, out, 0

    def start(self) -> None:
        if self.fmt == "csv":
            self._csv(self.COLUMNS)
        elif self.fmt == "table":
            print(f"{'file':<40} {'valence':>8} {'arousal':>8}  quadrant", file=self.out)
        elif self.fmt == "json":
            print("[", file=self.out)

    def _csv(self, row) -> None:  # noqa: ANN001
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(row)
        self.out.write(buf.getvalue())

    def add(self, pred) -> None:  # noqa: ANN001
        d = pred.on_scale(self.scale)
        if self.fmt == "csv":
            self._csv([d.get(c, "") for c in self.COLUMNS])  # quadrant probabilities: empty without a head
        elif self.fmt == "jsonl":
            print(json.dumps(d), file=self.out)
        elif self.fmt == "json":
            print(("," if self.n else "") + json.dumps(d, indent=2), file=self.out)
        else:
            name = d["path"] if len(d["path"]) <= 40 else "..." + d["path"][-37:]
            tags = f"  [{', '.join(d['tags'])}]" if d.get("tags") else ""
            conf = f" ({d['confidence']:.0%})" if d.get("confidence") is not None else ""
            print(f"{name:<40} {d['valence']:>8.3f} {d['arousal']:>8.3f}  {d['quadrant']} {d['quadrant_words']}"
                  f"{conf}{tags}", file=self.out)
        self.out.flush()
        self.n += 1

    def end(self) -> None:
        if self.fmt == "json":
            print("]", file=self.out)


def _plot_path(args: argparse.Namespace, pred, used: set[str]) -> Path | None:  # noqa: ANN001
    if args.plot:
        return Path(args.plot)
    if args.plot_dir:
        stem = Path(pred.path).stem
        name, k = f"{stem}.png", 1
        while name in used:
            k += 1
            name = f"{stem}-{k}.png"
        used.add(name)
        return Path(args.plot_dir) / name
    return None


def _predict(args: argparse.Namespace) -> int:
    if args.plot and args.plot_dir:
        raise ConfigError("use --plot FILE.png for one file or --plot-dir DIR for many, not both")
    files, errors = _expand(args.paths)
    if args.plot and len(files) > 1:
        raise ConfigError(f"--plot writes one picture but {len(files)} files were given; use --plot-dir DIR")
    for e in errors:
        print(f"mer: error: {e}", file=sys.stderr)
    from ..infer.backends import choose_backend

    choose_backend(resolve_model(args.model), args.device, args.backend)  # a bad --model/--device/--backend
    # fails once, here, before any file is read or any worker started
    from tqdm import tqdm

    writer = Writer(args.format, args.scale)
    writer.start()
    failed, used = len(errors), set()
    bar = tqdm(total=len(files), unit="file", desc="predict", disable=args.quiet or len(files) < 2 or None,
               file=sys.stderr, leave=False)
    try:
        for status, value, warns in _results(files, args):
            bar.update(1)
            for w in warns:
                bar.write(f"mer: warning: {w}", file=sys.stderr)
            if status == "error":
                failed += 1
                bar.write(f"mer: error: {value}", file=sys.stderr)
                continue
            writer.add(value)
            target = _plot_path(args, value, used)
            if target is not None:
                from ..plot import plot_prediction

                plot_prediction(value, target)
                if args.plot:
                    print(f"plot: {target}", file=sys.stderr)
    finally:
        bar.close()
        writer.end()
    if args.plot_dir and writer.n:
        print(f"plots: {args.plot_dir} ({writer.n} files)", file=sys.stderr)
    if failed:
        print(f"mer: {failed} of {len(files) + len(errors)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="valence, arousal, quadrant and 2 Hz curve of audio files",
                       description="Predict the emotion of audio files and folders (recursive). Values are on the "
                                   "canonical scale [-1, 1] (0 neutral) unless --scale 1-9.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table",
                   help="table (default), csv (one row per file), json or jsonl (with the 2 Hz curve)")
    p.add_argument("--scale", choices=("canonical", "1-9"), default="canonical",
                   help="canonical [-1, 1] (default) or DEAM's 1-9")
    p.add_argument("--plot", metavar="FILE.png", help="valence-arousal picture of one file")
    p.add_argument("--plot-dir", metavar="DIR", help="one picture per file into DIR")
    add_model(p)
    add_workers(p)
    add_quiet(p)
    p.set_defaults(handler=_predict)
