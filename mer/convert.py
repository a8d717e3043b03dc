"""``mer convert``: every audio file under a folder to 16-bit PCM WAV, mirroring the tree.

The research notebooks' mp3-to-wav step, without ffmpeg and on any OS. Each file is decoded
and resampled in blocks (bounded memory), clipped to [-1, 1] and written to a temporary
file that is renamed into place only when complete, so an interruption never leaves a
half-written wav. Existing outputs are skipped unless ``overwrite``; a bad file is reported
and the others are still converted.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from . import audio
from .errors import AudioError, MERError
from .io import atomic_path, clean_stale_temps, refuse_collisions
from .workers import pool


@dataclass
class ConvertReport:
    """Outcome of a conversion run: paths converted, skipped (already there) and failed."""

    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def convert_file(src: str | os.PathLike, dst: str | os.PathLike, sr: int = 44100, channels: int | None = None) -> Path:
    """Convert one file to 16-bit PCM WAV at ``sr`` Hz; ``channels`` None keeps the source's."""
    src, dst = Path(src), Path(dst)
    meta = audio.info(src)
    out_channels = channels or meta.channels
    written = 0
    with atomic_path(dst) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=out_channels, subtype="PCM_16", format="WAV") as out:
            for block in audio.stream(meta, sr=sr, mono=out_channels == 1):
                block = audio.ensure_channels(block, out_channels)  # (C, n)
                out.write(np.clip(block.T, -1.0, 1.0))
                written += block.shape[-1]
        if written == 0:
            raise AudioError(f"{src}: contains no audio samples; nothing to convert")
    return dst


def _complete_wav(path: Path) -> bool:
    """Whether an existing output is a readable WAV with samples (a broken one is redone)."""
    try:
        i = sf.info(str(path))
    except Exception:  # noqa: BLE001  (libsndfile's errors: unreadable means redo it)
        return False
    return i.frames > 0 and audio.wav_missing_bytes(path) == 0


def _targets(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    if src.is_file():
        refuse_collisions([src], [("DST", dst)], "the input")
        if dst.suffix.lower() != ".wav" and dst.exists() and not dst.is_dir():
            raise MERError(f"{dst}: DST is a file but not a .wav; give a folder or a NAME.wav to write")
        out = dst if dst.suffix.lower() == ".wav" else dst / (src.stem + ".wav")
        return [(src, out)]
    if not src.is_dir():
        raise AudioError(f"{src}: no such file or folder; check the path")
    files = audio.find_audio([src])
    if not files:
        raise AudioError(f"{src}: no audio files found in this folder (looked for {', '.join(sorted(audio.AUDIO_EXTENSIONS))})")
    return [(f, (dst / f.relative_to(src)).with_suffix(".wav")) for f in files]


def _worker(src: Path, dst: Path, sr: int, channels: int | None) -> tuple[Path, str | None]:
    try:
        convert_file(src, dst, sr, channels)
        return src, None
    except MERError as exc:
        return src, str(exc)
    except Exception as exc:  # keep the batch going whatever one file does
        return src, f"{src}: {type(exc).__name__}: {exc}"


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    sr: int = 44100,
    channels: int | None = None,
    overwrite: bool = False,
    jobs: int | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Convert every audio file under ``src`` to WAV under ``dst`` with the same relative paths."""
    src, dst = Path(src), Path(dst)
    if channels not in (None, 1, 2):
        raise MERError(f"channels must be 1 or 2 (got {channels})")
    if not 1000 <= sr <= 768000:
        raise MERError(f"--sr {sr}: choose an output sample rate between 1000 and 768000 Hz (e.g. 44100)")
    clean_stale_temps(dst if dst.is_dir() else dst.parent, recursive=dst.is_dir())  # left by a killed run
    report = ConvertReport()
    todo: list[tuple[Path, Path]] = []
    targets = _targets(src, dst)
    # whatever the flags, before any work: no output is an input (of this file or another) or another's output
    refuse_collisions([s for s, _ in targets], [(f"output of {s}:", d) for s, d in targets], "an input")
    for s, d in targets:
        if d.exists() and not overwrite and _complete_wav(d):
            report.skipped.append(d)
        else:
            todo.append((s, d))
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(todo), unit="file", desc="convert", disable=not progress or not todo)
    try:
        if jobs == 1:
            results = (_worker(s, d, sr, channels) for s, d in todo)
            for (s, d), (_, err) in zip(todo, results):
                _record(report, s, d, err, bar)
        else:
            executor = pool(jobs)
            try:
                futures = {executor.submit(_worker, s, d, sr, channels): (s, d) for s, d in todo}
                for fut in as_completed(futures):
                    s, d = futures[fut]
                    _record(report, s, d, fut.result()[1], bar)
            finally:  # on Ctrl-C: drop queued files; files in progress finish or leave no trace
                executor.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    return report


def _record(report: ConvertReport, src: Path, dst: Path, err: str | None, bar: tqdm) -> None:
    if err is None:
        report.converted.append(dst)
    else:
        report.failed.append((src, err))
        tqdm.write(f"mer: error: {err}", file=sys.stderr)
    bar.update(1)
