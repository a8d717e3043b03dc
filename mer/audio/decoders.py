"""The two decoders behind :func:`mer.audio.stream`: libsndfile (always there) and PyAV
(FFmpeg, the ``[formats]`` extra, imported only when a file needs it). :func:`mer.audio.info`
picks one per file and records its name in :class:`~mer.audio.sniff.AudioInfo`; each yields
float32 ``(frames, channels)`` blocks at the native rate and says when a file came up short.

libsndfile's MP3 decoder (libmpg123) prints its own notes about damaged frames straight to file
descriptor 2. :func:`library_stderr` keeps them out of the user's terminal: around each libsndfile
call on an MP3 (never across a ``yield``, so progress bars and warnings between blocks are
untouched; one thread at a time, so two threads' notes never interleave) fd 2 goes to a temporary
file; what libmpg123 wrote is condensed into mer's own line (the error, or a warning when damaged
frames were skipped) and whatever else was written meanwhile (another thread's output) is passed
on to the real stderr.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
import tempfile
import threading
import warnings
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeVar

import numpy as np
import soundfile as sf

from ..errors import AudioError, MERWarning
from .sniff import PYAV_INSTALL, AudioInfo, import_av, ogg_truncation, reason, wav_missing_bytes

T = TypeVar("T")

PYAV_SEEK_SECONDS = 30.0  # PyAV files: offsets beyond this seek (else decode from the start and drop)


class Decoder(Protocol):
    """What :func:`stream` needs from a decoder; :func:`info` picks one per file."""

    name: str

    def probe(self, path: Path) -> AudioInfo:
        """The file's :class:`AudioInfo`; raises when this decoder cannot open it or decode its start."""

    def blocks(self, meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
        """Float32 ``(frames, channels)`` blocks of at most ``block_frames`` frames at the native
        rate, from frame ``start`` on, ``remaining`` frames in all (None: to the end)."""

    def shortfall(self, meta: AudioInfo, start: int, remaining: int | None, read: int) -> str | None:
        """Why fewer frames were decoded than the file declares (it is truncated), or None."""


def header_shortfall(meta: AudioInfo, start: int, remaining: int | None, read: int, slack: int) -> str | None:
    """The truncation note when ``read`` frames fall more than ``slack`` short of the header's count."""
    rate = meta.samplerate
    expected = meta.frames - start if remaining is None else min(remaining, meta.frames - start)
    if meta.frames and read and read < expected - slack:  # no samples at all: an error later
        return f"truncated: the header promises {expected / rate:.2f} s but only {read / rate:.2f} s could be decoded"
    return None


# --------------------------------------------------------------------------- libmpg123's own output
#: a line libmpg123 writes ("Note: ...", "Warning: ...", "[src/libmpg123/parse.c:...] error: ...")
_LIBRARY_LINE = re.compile(rb"^(?:Note|Warning|Error): |^\[[^\]\n]*mpg123[^\]\n]*\]")
#: one libsndfile MP3 call at a time runs with fd 2 redirected (libmpg123's lines from two threads
#: would interleave); other formats print nothing and run without it, in parallel
_LOCK = threading.RLock()


class DecoderError(RuntimeError):
    """A libsndfile failure with libmpg123's most telling line added to it."""


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def library_stderr(kept: list[bytes]) -> Iterator[None]:
    """Run the body with file descriptor 2 sent to a temporary file, one thread at a time; the
    lines libmpg123 wrote meanwhile are appended to ``kept``, any other output (another thread's)
    is passed on to the real stderr on the way out. Where fd 2 cannot be redirected the body
    simply runs."""
    with _LOCK:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()  # Python's own buffered text belongs before the redirection
        try:
            with tempfile.TemporaryFile() as tmp:
                sink = os.dup(tmp.fileno())  # the dup keeps the unnamed file open
        except OSError:
            yield
            return
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to keep clean
            os.close(sink)
            yield
            return
        os.dup2(sink, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            others = b""
            with contextlib.suppress(OSError):
                for line in _read_all(sink).splitlines(keepends=True):
                    if _LIBRARY_LINE.match(line):
                        kept.append(line.strip())
                    else:
                        others += line
            os.close(sink)
            if others:
                with contextlib.suppress(OSError):
                    os.write(2, others)


def library_summary(lines: list[bytes], damage_only: bool = False) -> str:
    """libmpg123's most telling line (an error, else a note, other than its resync chatter; else,
    unless ``damage_only``, a warning), prefixed ``libmpg123:``, cut to one short clause; "" when
    there is none."""
    text = [ln.decode("utf-8", "replace").strip() for ln in lines]
    errors = [t.split("error: ", 1)[1] for t in text if "error: " in t]
    notes = [t[6:] for t in text if t.startswith("Note: ")]
    groups = [[t for t in g if "resync" not in t and not t.startswith("Skipped ")] for g in (errors, notes)]
    if not damage_only:
        groups.append([t.split(": ", 1)[-1] for t in text if t.startswith("Warning: ")])
    for group in groups:
        if group:
            first = group[0].rstrip(".!")
            return f"libmpg123: {first[:97] + '...' if len(first) > 100 else first}"
    if any("resync" in t for t in text):
        return "libmpg123: lost the MPEG frame sync in damaged or non-audio data"
    return ""


def _quietly(fn: Callable[[], T], kept: list[bytes], mpeg: bool) -> T:
    """``fn()``, inside :func:`library_stderr` for an MPEG file (``mpeg``); a failure is raised
    again as a DecoderError that carries libmpg123's summary when it printed one."""
    if not mpeg:
        return fn()
    try:
        with library_stderr(kept):
            return fn()
    except Exception as exc:
        summary = library_summary(kept)
        if not summary:
            raise
        raise DecoderError(f"{reason(exc)}; {summary}") from exc


def _mpeg(path: Path) -> bool:
    """Whether libsndfile would read ``path`` with libmpg123: an MPEG name, an ID3 tag or a frame sync."""
    if path.suffix.lower() in (".mp3", ".mp2", ".mpga"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return False
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


class Sndfile:
    """libsndfile (through soundfile): exact frame counts except for mp3, sample-exact seeking.
    Each libsndfile call runs inside :func:`library_stderr`."""

    name = "sndfile"
    _UNKNOWN = 1 << 62  # libsndfile's frame count when it cannot tell the length (SF_COUNT_MAX)

    def probe(self, path: Path) -> AudioInfo:
        def first() -> tuple[int, int, int, str]:
            with open(path, "rb") as raw, sf.SoundFile(raw) as f:
                f.read(1024, dtype="float32")  # a file libsndfile opens but cannot decode fails here, not mid-stream
                return int(f.samplerate), int(f.channels), int(f.frames), str(f.format)

        rate, channels, frames, fmt = _quietly(first, [], _mpeg(path))
        if frames >= self._UNKNOWN:  # a length libsndfile cannot tell: PyAV can, when installed
            if import_av() is not None:
                raise ValueError("libsndfile cannot tell the length")
            frames = 0
        return AudioInfo(path, rate, channels, frames, frames / rate, fmt, self.name)

    def blocks(self, meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
        mpeg = meta.format in ("MPEG", "MP3")
        with open(meta.path, "rb") as raw, _quietly(lambda: sf.SoundFile(raw), [], mpeg) as fh:
            if start:
                _quietly(lambda: fh.seek(start), [], mpeg)
            said = False
            while remaining is None or remaining > 0:
                n = block_frames if remaining is None else min(block_frames, remaining)
                noise: list[bytes] = []
                block = _quietly(lambda: fh.read(n, dtype="float32", always_2d=True), noise, mpeg)
                damage = library_summary(noise, damage_only=True) if noise and not said else ""
                if damage:  # decoded, but damaged frames were skipped: said once, in mer's words
                    said = True
                    warnings.warn(f"{meta.path}: damaged MP3 frames were skipped while decoding ({damage}); "
                                  "results cover what could be decoded", MERWarning, stacklevel=2)
                if not len(block):
                    return
                if remaining is not None:
                    remaining -= len(block)
                yield block
                if len(block) < n:
                    return

    def shortfall(self, meta: AudioInfo, start: int, remaining: int | None, read: int) -> str | None:
        if meta.format in ("MPEG", "MP3"):  # mp3 frame counts are estimates
            return None
        short = header_shortfall(meta, start, remaining, read, slack=meta.samplerate // 10)
        if short or remaining is not None or not read:
            return short
        if meta.format == "OGG":  # read to the end (from any offset): the last page tells
            return ogg_truncation(meta.path)
        missing = wav_missing_bytes(meta.path) if meta.format == "WAV" and not start else 0
        return f"truncated WAV: {missing} bytes of audio the header declares are missing" if missing else None


class PyAV:
    """FFmpeg through PyAV, imported on first use. Lengths come from the container (an estimate
    for raw AAC/AC-3 streams); offsets up to ``PYAV_SEEK_SECONDS`` are decoded and dropped
    (sample-exact), longer ones seek by timestamp (exact in MP4/Ogg/raw streams, within 1 ms in
    Matroska/WebM/ASF, whose timestamps are in milliseconds)."""

    name = "av"
    _INDEXED = ("mov,", "matroska", "asf", "ogg")  # containers whose declared length is the real one

    def probe(self, path: Path) -> AudioInfo:
        av = self._av(path)
        with open(path, "rb") as raw, av.open(raw, "r") as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            first = next(container.decode(stream), None)  # decodable, and the rate and layout really decoded
            ctx = stream.codec_context
            rate = int(first.sample_rate if first is not None else ctx.sample_rate or 0)
            channels = len(first.layout.channels) if first is not None else int(ctx.channels or 0)
            if rate <= 0 or channels <= 0:
                raise ValueError("no sample rate or channel count in the stream")
            if stream.duration:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / av.time_base
            frames = int(round(seconds * rate))
            return AudioInfo(path, rate, channels, frames, frames / rate, f"{container.format.name}/{ctx.name}",
                             self.name)

    def blocks(self, meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
        av = self._av(meta.path)
        with open(meta.path, "rb") as raw, av.open(raw, "r") as container:
            frames, position = self._frames_from(container, container.streams.audio[0], start, meta.samplerate)
            yield from window(float_arrays(av, frames), start - position, remaining, block_frames)

    def shortfall(self, meta: AudioInfo, start: int, remaining: int | None, read: int) -> str | None:
        if not meta.format.startswith(self._INDEXED):  # raw streams: the length is a bitrate estimate
            return None
        short = header_shortfall(meta, start, remaining, read, slack=meta.samplerate // 10 + meta.frames // 50)
        if short or not meta.format.startswith("ogg") or remaining is not None or not read:
            return short
        return ogg_truncation(meta.path)  # Ogg's length comes from its last page: a cut file looks whole

    @staticmethod
    def _av(path: Path) -> ModuleType:
        av = import_av()
        if av is None:  # an AudioInfo made where PyAV was installed
            raise AudioError(f"{path}: {PYAV_INSTALL}")
        return av

    @staticmethod
    def _frames_from(container: Any, stream: Any, start: int, rate: int) -> tuple[Iterator[Any], int]:
        """Decoded frames from at or before frame ``start``, and the frame index of the first one.

        Decodes from the beginning unless ``start`` lies beyond ``PYAV_SEEK_SECONDS``; then it
        seeks half a second early (the decoder's warm-up, dropped later) and places the first
        frame by its timestamp relative to the file's first frame."""
        frames = container.decode(stream)
        first = next(frames, None)
        if first is None or first.pts is None or start < PYAV_SEEK_SECONDS * rate:
            return itertools.chain([first] if first is not None else [], frames), 0
        origin = first.pts * (first.time_base or stream.time_base)
        target = origin + Fraction(start, rate) - Fraction(1, 2)
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        frames = container.decode(stream)
        frame = next(frames, None)
        if frame is not None and frame.pts is not None:
            position = round((frame.pts * (frame.time_base or stream.time_base) - origin) * rate)
            if 0 <= position <= start:
                return itertools.chain([frame], frames), position
        container.seek(first.pts, stream=stream, backward=True)  # could not place it: decode from the start
        return container.decode(stream), 0


def float_arrays(av: ModuleType, frames: Iterable[Any]) -> Iterator[np.ndarray]:
    """Packed float32 ``(n, channels)`` arrays of decoded PyAV frames (sample format conversion only)."""
    resampler = av.AudioResampler(format="flt")
    seen = False
    for frame in itertools.chain(frames, [None]):  # None: flush
        if frame is None and not seen:
            return
        seen = True
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1, len(out.layout.channels))


def window(arrays: Iterable[np.ndarray], skip: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
    """Blocks of exactly ``block_frames`` frames (the last one shorter) from ``arrays`` after
    dropping the first ``skip`` frames, ``remaining`` frames in all (None: to the end). Holds
    at most one block and one decoded frame."""
    pending: list[np.ndarray] = []
    have = 0
    for a in arrays:
        if skip:
            cut = min(skip, len(a))
            a, skip = a[cut:], skip - cut
        if remaining is not None:
            a = a[:remaining]
            remaining -= len(a)
        pending.append(a)
        have += len(a)
        while have >= block_frames:
            joined = np.concatenate(pending)
            yield joined[:block_frames]
            pending, have = [joined[block_frames:]], have - block_frames
        if remaining == 0:
            break
    if have:
        yield np.concatenate(pending)


SNDFILE, PYAV = Sndfile(), PyAV()
DECODERS: dict[str, Decoder] = {d.name: d for d in (SNDFILE, PYAV)}
