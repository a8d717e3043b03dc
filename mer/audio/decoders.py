"""The two decoders behind :func:`mer.audio.stream`: libsndfile (always there) and PyAV
(FFmpeg, the ``[formats]`` extra, imported only when a file needs it). :func:`mer.audio.info`
picks one per file and records its name in :class:`~mer.audio.sniff.AudioInfo`; each yields
float32 ``(frames, channels)`` blocks at the native rate and says when a file came up short.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator, Protocol

import numpy as np
import soundfile as sf

from ..errors import AudioError
from .sniff import PYAV_INSTALL, AudioInfo, import_av, ogg_truncation, wav_missing_bytes

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


class Sndfile:
    """libsndfile (through soundfile): exact frame counts except for mp3, sample-exact seeking."""

    name = "sndfile"
    _UNKNOWN = 1 << 62  # libsndfile's frame count when it cannot tell the length (SF_COUNT_MAX)

    def probe(self, path: Path) -> AudioInfo:
        with open(path, "rb") as raw, sf.SoundFile(raw) as f:
            f.read(1024, dtype="float32")  # a file libsndfile opens but cannot decode fails here, not mid-stream
            rate, channels, frames, fmt = int(f.samplerate), int(f.channels), int(f.frames), str(f.format)
        if frames >= self._UNKNOWN:  # a length libsndfile cannot tell: PyAV can, when installed
            if import_av() is not None:
                raise ValueError("libsndfile cannot tell the length")
            frames = 0
        return AudioInfo(path, rate, channels, frames, frames / rate, fmt, self.name)

    def blocks(self, meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
        with open(meta.path, "rb") as raw, sf.SoundFile(raw) as fh:
            if start:
                fh.seek(start)
            while remaining is None or remaining > 0:
                n = block_frames if remaining is None else min(block_frames, remaining)
                block = fh.read(n, dtype="float32", always_2d=True)
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
