"""The second decoder of :mod:`mer.audio`: PyAV (FFmpeg inside its wheels), optional extra ``[formats]``.

libsndfile reads WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF and the like without any dependency;
users' libraries also hold AAC (``.m4a``, ``.aac``, ``.mp4``), WebM/Matroska, WMA and Opus
files libsndfile refuses. For those, :func:`mer.audio.info` falls back to this module, which
decodes block by block (memory stays bounded) into the same float32 ``(frames, channels)``
blocks at the native rate that libsndfile gives; :mod:`mer.audio` does the mixing and the
resampling for both.

PyAV is imported only here, on first use; without it :func:`available` is False and
``mer.audio`` says which ``pip install`` line adds it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterator

import numpy as np

#: extensions (and leading bytes) that only the FFmpeg decoder reads; used to say "install the decoder"
EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".m4b", ".webm", ".weba", ".mka", ".mkv", ".wma", ".asf", ".opus",
                        ".ac3", ".alac", ".3gp", ".amr"})
_MAGIC = (b"ftyp", b"\x1aE\xdf\xa3", b"0&\xb2u", b"OpusHead", b"\xff\xf1", b"\xff\xf9")


def available() -> bool:
    return importlib.util.find_spec("av") is not None


def looks_like_ffmpeg_only(path: Path) -> bool:
    """Whether ``path`` is probably a format only the FFmpeg decoder handles (name or leading bytes)."""
    if path.suffix.lower() in EXTENSIONS:
        return True
    try:
        head = path.open("rb").read(64)
    except OSError:
        return False
    return any(m in head[:40] for m in _MAGIC)


def probe(path: Path) -> tuple[int, int, int, str]:
    """(native rate, channels, frames or 0 when unknown, format name); raises on undecodable input."""
    import av

    with av.open(str(path), "r") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        s = container.streams.audio[0]
        rate, channels = int(s.codec_context.sample_rate or s.rate or 0), int(s.codec_context.channels or 0)
        if rate <= 0 or channels <= 0:
            raise ValueError("no sample rate or channel count in the stream")
        seconds = 0.0
        if s.duration is not None and s.time_base is not None:
            seconds = float(s.duration * s.time_base)
        elif container.duration is not None:
            seconds = container.duration / 1_000_000
        return rate, channels, int(round(seconds * rate)), f"{container.format.name}/{s.codec_context.name}"


def blocks(path: Path, start: int, remaining: int | None, block_frames: int, channels: int) -> Iterator[np.ndarray]:
    """Float32 ``(frames, channels)`` blocks at the native rate, from frame ``start`` on, at most
    ``remaining`` frames (None: to the end), about ``block_frames`` per block."""
    import av

    resampler = av.AudioResampler(format="flt", layout=None)  # packed float32, the stream's own layout and rate
    pending: list[np.ndarray] = []
    have, skip = 0, start
    with av.open(str(path), "r") as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for f in resampler.resample(frame):
                a = f.to_ndarray().reshape(-1, channels)  # packed: (1, n * ch) -> (n, ch)
                if skip:
                    cut = min(skip, len(a))
                    a, skip = a[cut:], skip - cut
                if remaining is not None:
                    a = a[:remaining]
                    remaining -= len(a)
                if len(a):
                    pending.append(a)
                    have += len(a)
                if have >= block_frames:
                    yield np.concatenate(pending).astype(np.float32, copy=False)
                    pending, have = [], 0
            if remaining is not None and remaining <= 0:
                break
    if pending:
        yield np.concatenate(pending).astype(np.float32, copy=False)
