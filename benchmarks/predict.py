"""Speed and scale of ``mer predict``, as a new user runs it (fresh processes, the CLI).

Measures, per bundled model:

- batch throughput: ``mer predict <folder> --format csv`` over the 600 4Q clips with the
  default worker count (one per core), in seconds of audio per wall-clock second;
- cold start: wall time of ``mer predict ONE_FILE`` in a fresh process (median of 3), which
  includes starting Python, importing the engine and loading the model;
- peak memory (max RSS of the process tree) on a generated 60-minute 44.1 kHz stereo WAV.

Usage (from the repository root)::

    python -m benchmarks.predict --data ../shared/data [--clips DIR] [--models default fast] [--backends auto torch]

``--backends``: ``auto`` is what ``mer predict`` does by default (ONNX Runtime for a model
with ONNX graphs, like the default; PyTorch otherwise); ``torch`` forces PyTorch. A
(model, backend) pair that would repeat another row is skipped.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks._data import data_parser, data_root


def mer(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True)
    return time.perf_counter() - t0, res


def long_file(path: Path, minutes: float = 60.0, sr: int = 44100) -> Path:
    """A generated stereo WAV of ``minutes``, written block by block (never all in memory)."""
    from mer.synth import clip

    if path.exists():
        return path
    block = np.stack([clip(0.3, 0.4, 30.0, sr, seed=1), clip(-0.2, 0.5, 30.0, sr, seed=2)], axis=1)
    with sf.SoundFile(path, "w", sr, 2, subtype="PCM_16") as fh:
        for _ in range(int(minutes * 2)):
            fh.write(block)
    return path


def peak_rss_mb(*args: str) -> tuple[float, float, int]:
    """(max RSS in MB of the child process tree, wall seconds, exit status) of one mer run."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run([sys.executable, '-m', 'mer', *sys.argv[1:]], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024, float(out[1]), int(out[2])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--clips", default=None, help="the clips' folder (default: DATA/4q-dev)")
    ap.add_argument("--models", nargs="+", default=["default", "fast"])
    ap.add_argument("--backends", nargs="+", default=["auto"], choices=["auto", "onnx", "torch"])
    ap.add_argument("--long-minutes", type=float, default=60.0)
    args = ap.parse_args(argv)
    args.clips = args.clips or str(data_root(args) / "4q-dev")

    from mer.audio import find_audio

    files = find_audio([args.clips])
    one = str(files[0])
    tmp = Path(tempfile.gettempdir()) / "mer-bench"
    tmp.mkdir(exist_ok=True)
    long_path = long_file(tmp / f"long-{args.long_minutes:g}min.wav", args.long_minutes)
    print(f"machine: {os.cpu_count()} cores; {len(files)} clips in {args.clips}; long file "
          f"{long_path.stat().st_size / 1e6:.0f} MB ({args.long_minutes:g} min, 44.1 kHz stereo)\n")
    from mer.hub import Bundle
    from mer.infer.backends import onnx_status

    rows = []
    for model in args.models:
        engines = {b: ("onnx" if onnx_status(Bundle.resolve(model)) is None else "torch") if b == "auto" else b
                   for b in args.backends}
        for backend in dict.fromkeys(args.backends):
            if backend != "auto" and engines.get("auto") == backend:
                continue  # same as the auto row
            opts = ("--model", model, "--backend", backend)
            mer("predict", one, *opts)  # warm the OS file cache
            wall, res = mer("predict", args.clips, "--format", "csv", "--quiet", *opts)
            if res.returncode != 0:
                raise SystemExit(f"batch run failed: {res.stderr[-500:]}")
            audio_s = sum(float(r["duration"]) for r in csv.DictReader(io.StringIO(res.stdout)))
            cold = statistics.median(mer("predict", one, "--quiet", *opts)[0] for _ in range(3))
            rss, long_wall, code = peak_rss_mb("predict", str(long_path), "--quiet", *opts)
            if code != 0:
                raise SystemExit(f"long-file run failed with status {code}")
            label = f"{backend} ({engines[backend]})" if backend == "auto" else backend
            rows.append((model, label, audio_s / wall, wall, cold, rss, long_wall))
    print("| model | --backend | batch throughput (audio s / s) | batch wall (s) | cold start, 1 file (s) | "
          f"peak RSS, {args.long_minutes:g}-min file (MB) | {args.long_minutes:g}-min file wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for m, b, thr, wall, cold, rss, lw in rows:
        print(f"| {m} | {b} | {thr:.0f}x | {wall:.1f} | {cold:.2f} | {rss:.0f} | {lw:.1f} |")


if __name__ == "__main__":
    main()
