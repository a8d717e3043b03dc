"""Speed and memory of ``mer predict`` and ``mer index``, as a new user runs them (fresh
processes, the CLI), beside the decode floor, optionally beside an older checkout.

Measures, in one run:

- **the decode floor**: what only decoding costs, soundfile's read of each clip, mixed to
  mono and resampled to 16 kHz with soxr (HQ), one process per core; no features, no network.
  mer cannot be faster than this, so its throughput is printed as a fraction of it;
- **batch throughput** of ``mer predict <folder> --format csv`` (default workers: one per
  core) and of ``mer index <folder>`` into a new library, in seconds of audio per second;
- **cold start**: wall time of ``mer predict ONE_CLIP`` in a fresh process (median of 5);
- **peak memory** (max RSS of the process tree) of ``mer predict`` on generated 44.1 kHz
  stereo WAVs of each ``--long-minutes`` length (60 and 180 by default; 1.9 GB of disk for 3 h),
  and of a ``mer serve`` process predicting the longest one uploaded as FLAC (0.7 GB);
- **where one clip's time goes** (one process, one thread, median over ``--stage-clips``
  clips): decoding, resampling, the log-mel front-end, the network, and the rest of
  ``Predictor.__call__``.

``--before DIR`` runs every measurement a second time with the ``mer`` package of another
checkout (e.g. ``git worktree add /tmp/before v0.9``), in the same run, so the table shows
before and after measured under the same conditions.

Usage (from the repository root)::

    python -m benchmarks.predict --data ../shared/data [--before DIR] [--clips DIR] [--models default fast]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks._data import REPO, data_parser, data_root

#: one thread per process for the in-process stage timings (BLAS would otherwise take both cores)
ONE_THREAD = {n: "1" for n in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def child_env(code: Path, **extra: str) -> dict[str, str]:
    """The environment of a measured process: ``code`` first on the path, and bytecode caching
    on (as on a user's machine; some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every
    start compile mer's modules again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(code), **extra}


def run(code: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """(wall seconds, result) of ``python -m mer ARGS`` with the ``mer`` of checkout ``code``,
    started outside any checkout so that ``code`` is the package imported."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                         env=child_env(code, **(env or {})))
    return time.perf_counter() - t0, res


def peak_rss_mb(code: Path, *args: str) -> tuple[float, float, int]:
    """(max RSS in MB of the process tree, wall seconds, exit status) of one ``mer`` run."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "r = subprocess.run([sys.executable, '-m', 'mer', *sys.argv[1:]], capture_output=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, r.returncode)")
    out = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), env=child_env(code)).stdout.split()
    return int(out[0]) / 1024, float(out[1]), int(out[2])


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


def as_flac(wav: Path) -> Path:
    """The same audio as FLAC (block by block), for the server's upload."""
    flac = wav.with_suffix(".flac")
    if not flac.exists():
        with sf.SoundFile(wav) as src, sf.SoundFile(flac, "w", src.samplerate, src.channels, subtype="PCM_16") as dst:
            for block in src.blocks(blocksize=1 << 20):
                dst.write(block)
    return flac


def serve_peak_mb(code: Path, path: Path) -> tuple[float, float]:
    """(the server's peak RSS in MB, seconds until done) of ``mer serve`` predicting one upload."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    minutes = str(int(sf.info(path).duration / 60) + 5)
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), "--max-minutes", minutes,
                               "--max-upload-mb", "4000", "--max-request-mb", "4000"], cwd=tempfile.gettempdir(),
                              env=child_env(code), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            r = httpx.post(f"{url}/api/predict", files={"files": (path.name, fh, "audio/flac")},
                           headers={"Origin": url}, timeout=600)
        job = r.json()["jobs"][0]["id"]
        while httpx.get(f"{url}/api/jobs/{job}", timeout=10).json().get("state") not in ("done", "error"):
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        status = Path(f"/proc/{server.pid}/status").read_text()
        peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        return peak / 1024, wall
    finally:
        server.terminate()
        server.wait(timeout=30)


def _floor_one(path: str) -> float:
    import soxr

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    soxr.resample(y.mean(axis=1), sr, 16000, quality="HQ")
    return len(y) / sr


def decode_floor(files: list[str]) -> tuple[float, float]:
    """(audio seconds per second, wall seconds): soundfile + soxr HQ to 16 kHz mono, one process
    per core, the files handed out in order."""
    os.environ.update(ONE_THREAD)
    with Pool(os.cpu_count()) as workers:
        workers.map(_floor_one, files[:4])  # start the workers and import soxr in each
        t0 = time.perf_counter()
        seconds = sum(workers.map(_floor_one, files, chunksize=4))
        wall = time.perf_counter() - t0
    return seconds / wall, wall


#: run in a child process with the code under test on PYTHONPATH: it uses only APIs every
#: version has (audio.stream, stream_features, Inference.__call__, Predictor.__call__)
STAGES = r"""
import json, statistics, sys, time
from mer.audio import info, stream
from mer.features import stream_features
from mer.infer.predictor import Predictor

files, model = json.loads(sys.argv[1]), sys.argv[2]
p = Predictor(model, threads=1)
p(files[0])
rows = []
for f in files:
    t = [time.perf_counter()]
    h = info(f)
    for _ in stream(h, sr=None, mono=True): pass
    t.append(time.perf_counter())
    for _ in stream(h, sr=p.feature.sample_rate, mono=p.feature.channels == 1): pass
    t.append(time.perf_counter())
    x = stream_features(h, p.feature)
    t.append(time.perf_counter())
    p.inference(x)
    t.append(time.perf_counter())
    p(f)
    t.append(time.perf_counter())
    d = [b - a for a, b in zip(t, t[1:])]
    rows.append([d[0], d[1] - d[0], d[2] - d[1], d[3], d[4] - d[2] - d[3], d[4]])
print(json.dumps([statistics.median(c) * 1000 for c in zip(*rows)]))
"""


def stages(code: Path, files: list[str], model: str) -> list[float]:
    """Median ms per clip: decode, resample, log-mel, network, the rest, whole predict."""
    res = subprocess.run([sys.executable, "-c", STAGES, json.dumps(files), model], capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), env=child_env(code, **ONE_THREAD))
    if res.returncode != 0:
        raise SystemExit(f"stage timing failed: {res.stderr[-800:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(code: Path, model: str, clips: str, one: str, longs: list[tuple[float, Path]], tmp: Path) -> dict:
    opts = ("--model", model)
    run(code, "predict", one, *opts)  # warm the OS file cache and the bytecode cache
    wall, res = run(code, "predict", clips, "--format", "csv", "--quiet", *opts)
    if res.returncode != 0:
        raise SystemExit(f"{code}: batch run failed: {res.stderr[-500:]}")
    audio_s = sum(float(r["duration"]) for r in csv.DictReader(io.StringIO(res.stdout)))
    cold = statistics.median(run(code, "predict", one, "--quiet", *opts)[0] for _ in range(5))
    db = tmp / f"index-{os.getpid()}.sqlite"
    db.unlink(missing_ok=True)
    index_wall, res = run(code, "index", clips, "--db", str(db), "--quiet", *opts)
    if res.returncode != 0:
        raise SystemExit(f"{code}: index run failed: {res.stderr[-500:]}")
    db.unlink(missing_ok=True)
    rss = {}
    for minutes, path in longs:
        mb, lwall, status = peak_rss_mb(code, "predict", str(path), "--quiet", *opts)
        if status != 0:
            raise SystemExit(f"{code}: {minutes:g}-min run failed with status {status}")
        rss[minutes] = (mb, lwall)
    serve = serve_peak_mb(code, as_flac(longs[-1][1])) if longs and model == "default" else (float("nan"), 0.0)
    return {"throughput": audio_s / wall, "wall": wall, "index": audio_s / index_wall, "cold": cold, "rss": rss,
            "serve": serve}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--clips", default=None, help="the clips' folder (default: DATA/4q-dev)")
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--before", type=Path, default=None, metavar="DIR",
                    help="another checkout to measure in the same run (its mer/ package)")
    ap.add_argument("--long-minutes", type=float, nargs="*", default=[60.0, 180.0])
    ap.add_argument("--stage-clips", type=int, default=40)
    args = ap.parse_args(argv)
    args.clips = str(Path(args.clips or data_root(args) / "4q-dev").resolve())  # the runs start elsewhere

    from mer.audio import find_audio

    files = [str(f) for f in find_audio([args.clips])]
    tmp = Path(tempfile.gettempdir()) / "mer-bench"
    tmp.mkdir(exist_ok=True)
    longs = [(m, long_file(tmp / f"long-{m:g}min.wav", m)) for m in args.long_minutes]
    versions = [("before", args.before.resolve())] if args.before else []
    versions.append(("after" if args.before else "this checkout", REPO))
    floor, floor_wall = decode_floor(files)
    print(f"machine: {os.cpu_count()} cores; {len(files)} clips in {args.clips}; decode floor (soundfile + soxr HQ "
          f"to 16 kHz mono, one process per core): {floor:.0f}x real time ({floor_wall:.1f} s)\n")

    results = {(label, m): measure(code, m, args.clips, files[0], longs, tmp) for m in args.models
               for label, code in versions}
    timing = {(label, m): stages(code, files[:args.stage_clips], m) for m in args.models for label, code in versions}
    floor_after = decode_floor(files)[0]  # the floor again, after: how much the machine drifted
    print(f"decode floor again after the runs: {floor_after:.0f}x\n")

    mem = " | ".join(f"peak RSS {m:g} min (MB)" for m, _ in longs)
    last = f"{longs[-1][0]:g}-min FLAC" if longs else "-"
    print(f"| code | model | predict (audio s / s) | of the floor | index (audio s / s) | cold start (s) | {mem} | "
          f"`mer serve` peak RSS, {last} upload (MB) |")
    print("|---|---|---|---|---|---|" + "---|" * (len(longs) + 1))
    for (label, m), r in results.items():
        rss = " | ".join(f"{r['rss'][mm][0]:.0f} ({r['rss'][mm][1]:.0f} s)" for mm, _ in longs)
        print(f"| {label} | {m} | {r['throughput']:.0f}x | {r['throughput'] / floor:.2f} | {r['index']:.0f}x | "
              f"{r['cold']:.2f} | {rss} | {r['serve'][0]:.0f} |")
    print(f"\nOne 30-s clip, one process, one thread (median ms over {min(len(files), args.stage_clips)} clips):\n")
    print("| code | model | decode | resample | log-mel | network | rest | predict |")
    print("|---|---|---|---|---|---|---|---|")
    for (label, m), t in timing.items():
        print(f"| {label} | {m} | " + " | ".join(f"{v:.1f}" for v in t) + " |")


if __name__ == "__main__":
    main()
