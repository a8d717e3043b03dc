"""Reading audio: :func:`info` (header, and the decoder chosen once per file), :func:`stream`
(bounded-memory blocks at any rate, streamed soxr resampling), :func:`load`, and the level
checks (silent, very short, far outside [-1, 1]). See :mod:`mer.audio` for the whole picture.
"""

from __future__ import annotations

import os
import warnings
from typing import Iterator

import numpy as np
import soxr

from ..errors import AudioError, MERWarning
from .decoders import DECODERS, PYAV, SNDFILE
from .sniff import (PYAV_INSTALL, AudioInfo, check_path, import_av, leading_bytes, mp3_problem, needs_pyav, pyav_magic,
                    reason)

BLOCK_FRAMES = 1 << 20  # frames read per block at the native rate (~24 s at 44.1 kHz)
SILENCE_PEAK = 1e-4  # -80 dBFS
SHORT_SECONDS = 1.0
MIN_RATE = 1000  # Hz: below it a file holds nothing of music (the band up to 500 Hz at most)
LOW_RATE = 8000  # Hz: telephone quality; below it results are unreliable


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file and choose its decoder (decodes only its first samples).

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.

    Returns
    -------
    AudioInfo
        The path, native sample rate (Hz), channels, frames, duration (s) and the decoder
        (libsndfile, else PyAV) every later read of this file uses.

    Raises
    ------
    mer.AudioError
        Missing path, not a regular file, empty, not audio any installed decoder reads (naming
        the extra that would), an mp3 whose last frame is cut, a sample rate below 1000 Hz.
    """
    p = check_path(path)
    head = leading_bytes(p)
    if p.suffix.lower() in (".mp3", ".mp2") and not pyav_magic(head):  # an m4a named .mp3 goes to PyAV
        problem = mp3_problem(p)
        if problem:
            raise AudioError(f"{p}: {problem}")
    try:
        meta = SNDFILE.probe(p)
    except Exception as exc:  # noqa: BLE001  (libsndfile reports unknown formats with misleading messages)
        why = reason(exc)
    else:
        check_rate(meta.samplerate, p)
        return meta
    if import_av() is None:
        if needs_pyav(p, head):
            raise AudioError(f"{p}: {PYAV_INSTALL}")
        raise AudioError(f"{p}: not a readable audio file ({why}); supported: wav, flac, ogg, mp3, aiff")
    try:
        meta = PYAV.probe(p)
    except Exception as exc:  # noqa: BLE001  (FFmpeg's own error types)
        raise AudioError(f"{p}: not a readable audio file ({why}; FFmpeg: {reason(exc)}); supported: wav, flac, "
                         "ogg, mp3, aiff, m4a, aac, opus, webm, wma") from None
    check_rate(meta.samplerate, p)
    return meta


def check_rate(rate: float, path: str | os.PathLike) -> None:
    """Refuse a sample rate below :data:`MIN_RATE` (AudioError), warn below :data:`LOW_RATE`."""
    if rate < MIN_RATE:
        raise AudioError(f"{path}: sample rate {rate:g} Hz is too low to hold music (at least {MIN_RATE} Hz, "
                         "usually 44100); is the header damaged? re-export the file")
    if rate < LOW_RATE:
        warnings.warn(f"{path}: sample rate {rate:g} Hz (below {LOW_RATE} Hz) keeps little of the music; "
                      "results will be unreliable", MERWarning, stacklevel=3)


def _mix(block: np.ndarray, mono: bool) -> np.ndarray:
    """(frames, channels) -> (frames,) mean when mono, else unchanged.

    A product with a vector of 1 / channels: ten times faster than ``mean(axis=1)``, which
    reduces along the short, strided axis."""
    if not mono:
        return block
    return block @ np.full(block.shape[1], 1.0 / block.shape[1], dtype=np.float32)


def stream(
    path: str | os.PathLike | AudioInfo,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """Yield the audio as consecutive blocks, in bounded memory, resampled as it streams.

    The concatenated blocks equal what :func:`load` returns (soxr's "HQ" resampling is
    streamed across block edges), so an hour-long file never has to be in memory at its native
    rate.

    Parameters
    ----------
    path : str, os.PathLike or AudioInfo
        The audio file, or its :class:`AudioInfo` from :func:`info` (skips reading the header
        twice).
    sr : int, optional
        Target sample rate in Hz; None keeps the native rate.
    mono : bool
        Mix the channels down to one (their mean).
    offset : float
        Seconds to skip at the start (>= 0).
    duration : float, optional
        Seconds to read from ``offset`` (> 0; default: to the end).
    block_frames : int
        Frames read per block at the native rate (default 2**20, ~24 s at 44.1 kHz).

    Yields
    ------
    np.ndarray
        float32 samples, nominally in [-1, 1]: ``(m,)`` when ``mono``, else ``(channels, m)``;
        block lengths vary.

    Raises
    ------
    mer.AudioError
        As :func:`info`; also NaN or infinite samples, an offset past the end, a decoding
        failure. A file shorter than its header says warns (:class:`mer.MERWarning`).
    """
    meta = path if isinstance(path, AudioInfo) else info(path)
    p = meta.path
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(f"{p}: offset must be >= 0 and duration > 0 (got offset={offset}, duration={duration})")
    native = meta.samplerate
    target = native if sr is None else int(sr)
    if target <= 0:
        raise AudioError(f"{p}: invalid target sample rate {sr}")
    start = int(round(offset * native))
    if meta.frames and start >= meta.frames:
        raise AudioError(f"{p}: offset {offset:g} s is past the end of the audio ({meta.duration:.2f} s)")
    remaining = None if duration is None else int(round(duration * native))
    channels = 1 if mono else meta.channels
    resampler = None if target == native else soxr.ResampleStream(native, target, channels, dtype="float32", quality="HQ")
    decoder = DECODERS[meta.decoder]
    read = 0
    try:
        blocks = decoder.blocks(meta, start, remaining, block_frames)
        block = next(blocks, None)
        while block is not None:
            following = next(blocks, None)  # one block of lookahead: the resampler must know the last one
            read += len(block)
            if not np.isfinite(block).all():
                raise AudioError(f"{p}: contains NaN or infinite samples (a damaged floating-point file); re-export it")
            block = _mix(block, mono)
            if resampler is not None:
                block = resampler.resample_chunk(block, last=following is None)
            if len(block):
                yield np.ascontiguousarray(block.T)
            block = following
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001  (decoder errors of either library)
        raise AudioError(f"{p}: decoding failed ({reason(exc)}); the file may be corrupt") from None
    shortfall = decoder.shortfall(meta, start, remaining, read)
    if shortfall:
        warnings.warn(f"{p}: {shortfall}; results cover the part that is there", MERWarning, stacklevel=2)


def load(
    path: str | os.PathLike,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 at a given rate, like ``librosa.load``.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file: WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, ... through libsndfile; AAC/M4A,
        WebM, WMA, ... through PyAV with the ``formats`` extra. Names need not be valid UTF-8.
    sr : int, optional
        Target sample rate in Hz; None keeps the native rate.
    mono : bool
        Mix the channels down to one (their mean).
    offset : float
        Seconds to skip at the start.
    duration : float, optional
        Seconds to read from ``offset`` (default: to the end).

    Returns
    -------
    y : np.ndarray
        float32 samples, nominally in [-1, 1]: shape ``(n,)`` when ``mono``, else
        ``(channels, n)``.
    sr : int
        The sample rate of ``y`` in Hz.

    Raises
    ------
    mer.AudioError
        The file cannot be read, or holds no samples (see :func:`stream`).

    Warns
    -----
    mer.MERWarning
        Silent audio (peak below -80 dBFS), shorter than a second, samples far outside
        [-1, 1], or fewer samples than the header says.

    Examples
    --------
    >>> y, sr = mer.audio.load("song.mp3", sr=16000)  # doctest: +SKIP
    >>> y.shape, y.dtype, sr  # doctest: +SKIP
    ((784509,), dtype('float32'), 16000)
    """
    meta = info(path)
    blocks = list(stream(meta, sr=sr, mono=mono, offset=offset, duration=duration))
    rate = meta.samplerate if sr is None else int(sr)
    if not blocks:
        raise AudioError(f"{meta.path}: contains no audio samples; re-export the file")
    y = np.concatenate(blocks, axis=-1)
    check_signal(y, rate, meta.path)
    return y, rate


def check_signal(y: np.ndarray, sr: int, path: str | os.PathLike) -> None:
    """Warn when ``y`` is silent or shorter than a second (``MERWarning``)."""
    check_levels(float(np.max(np.abs(y))) if y.size else 1.0, y.shape[-1] / sr, path)


def part_seconds(file_seconds: float, offset: float = 0.0, duration: float | None = None) -> float:
    """Seconds of a ``file_seconds`` file that ``offset`` and ``duration`` select (as in :func:`stream`)."""
    part = max(0.0, file_seconds - offset)
    return min(part, duration) if duration else part


def check_levels(peak: float, seconds: float, path: str | os.PathLike) -> None:
    """:func:`check_signal` from a running peak and length (for audio read block by block)."""
    if seconds < SHORT_SECONDS:
        warnings.warn(f"{path}: very short audio ({seconds:.2f} s); results will be unreliable", MERWarning, stacklevel=3)
    if peak < SILENCE_PEAK:
        warnings.warn(f"{path}: audio is silent (peak below -80 dBFS)", MERWarning, stacklevel=3)
    elif peak > 2.0:
        warnings.warn(f"{path}: samples reach {peak:.1f}, far outside [-1, 1] (an unusually scaled float file); "
                      "results may be off", MERWarning, stacklevel=3)


def ensure_channels(y: np.ndarray, channels: int) -> np.ndarray:
    """Return ``y`` as ``(channels, n)``: mono is duplicated, multichannel averaged to mono."""
    y = np.atleast_2d(y)
    if y.shape[0] == channels:
        return y
    if channels == 1:
        return y.mean(axis=0, keepdims=True)
    return np.repeat(y.mean(axis=0, keepdims=True), channels, axis=0)
