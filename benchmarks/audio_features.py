"""Decode + resample + log-mel throughput: mer's pipeline vs the librosa pipeline.

Both pipelines take the same files to 16 kHz mono and 96-band log-mel features
(n_fft 512, hop 256, log10(1 + 10000 x)):

- mer:     ``mer.audio.load(path, sr=16000)`` + ``mer.features.extract``
- librosa: ``librosa.load(path, sr=16000)`` + ``librosa.feature.melspectrogram`` + log

Reported: seconds of audio processed per wall-clock second, single process and with one
process per core, each pipeline run in the same invocation on the same files. The single
process rows use each library's default threading (what a user gets); in the one process
per core rows every process is held to one thread (torch, BLAS) so neither pipeline
oversubscribes the cores. A warm-up file is run first in every process (librosa's numba
JIT, torch's first call).

    python -m benchmarks.audio_features --data ../shared/data [--clips DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks._data import data_parser, data_root


def _init() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def mer_pipeline(path: str) -> float:
    from mer import audio, features

    y, sr = audio.load(path, sr=16000)
    feats = features.extract(y)
    assert feats.shape[1] == 96
    return y.size / sr


def librosa_pipeline(path: str) -> float:
    import librosa

    y, sr = librosa.load(path, sr=16000)
    mel = np.log10(1 + 10000 * librosa.feature.melspectrogram(y=y, sr=sr, n_fft=512, hop_length=256, n_mels=96))
    assert mel.shape[0] == 96
    return y.size / sr


def measure(fn, paths: list[str], jobs: int) -> tuple[float, float]:
    """Return (seconds of audio, wall seconds) for running ``fn`` over ``paths``."""
    if jobs == 1:
        fn(paths[0])  # warm-up
        t0 = time.perf_counter()
        total = sum(fn(p) for p in paths)
        return total, time.perf_counter() - t0
    with ProcessPoolExecutor(jobs, initializer=_init) as pool:
        list(pool.map(fn, paths[:jobs]))  # warm every worker
        t0 = time.perf_counter()
        total = sum(pool.map(fn, paths, chunksize=4))
        return total, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--clips", default=None, help="the mp3 files' folder (default: DATA/4q-dev)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N files")
    args = ap.parse_args(argv)
    clips = Path(args.clips) if args.clips else data_root(args) / "4q-dev"
    paths = sorted(str(p) for p in clips.rglob("*.mp3"))[: args.limit]
    if not paths:
        print(f"no mp3 files under {clips}", file=sys.stderr)
        return 1
    cores = os.cpu_count() or 1
    print(f"{len(paths)} files from {clips}, {cores} cores\n")
    print("| pipeline | processes | audio (s) | wall (s) | audio s / s | speed-up vs librosa |")
    print("|---|---|---|---|---|---|")
    for jobs in sorted({1, cores}):
        rows = {name: measure(fn, paths, jobs) for name, fn in (("librosa", librosa_pipeline), ("mer", mer_pipeline))}
        base = rows["librosa"][0] / rows["librosa"][1]
        for name, (audio_s, wall) in rows.items():
            print(f"| {name} | {jobs} | {audio_s:.0f} | {wall:.1f} | {audio_s / wall:.0f} | {audio_s / wall / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
