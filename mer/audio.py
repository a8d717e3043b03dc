"""Audio decoding: any format libsndfile reads (no ffmpeg needed), and with the optional extra
``[formats]`` whatever FFmpeg reads (AAC/m4a, Opus, WebM, WMA; :mod:`mer.audio_av`), at any
rate, in bounded memory.

Shapes and units:

- ``load`` returns ``(y, sr)``: ``y`` is float32 in [-1, 1], shape ``(n,)`` when ``mono``
  is true, else ``(channels, n)``; ``sr`` in Hz.
- ``stream`` yields blocks of the same layout, so an hour-long file never needs to be in
  memory at its native rate; resampling (soxr, "HQ") is streamed across block edges, so the
  concatenated blocks equal what ``load`` returns.

Errors are :class:`AudioError` naming the file: missing path, a directory or other
non-regular file, an empty file, a file no decoder can read (and, when only FFmpeg could,
which ``pip install`` adds it), an mp3 whose last frame is cut short, NaN or infinite samples,
a file with no samples, an offset past the end. Silent (peak below -80 dBFS), very short
(< 1 s), truncated (fewer samples than the header says) or far-outside-[-1, 1] audio gives a
:class:`MERWarning`, not an error. Files are opened through Python file objects, so names
that are not valid UTF-8 work too.
"""

from __future__ import annotations

import mmap
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr

from . import audio_av
from .errors import AudioError, MERWarning, install_hint

#: File extensions treated as audio when a folder is searched.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                              ".aifc", ".au", ".w64", ".caf"}) | audio_av.EXTENSIONS
BLOCK_FRAMES = 1 << 20  # frames read per block at the native rate (~24 s at 44.1 kHz)
SILENCE_PEAK = 1e-4  # -80 dBFS
SHORT_SECONDS = 1.0


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: native rate (Hz), channels, frames, duration (s), format."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    duration: float
    format: str
    decoder: str = "sndfile"  # or "av" (PyAV/FFmpeg, mer.audio_av)


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file; pass a file (or use a command that takes folders)")
    if not p.is_file():
        raise AudioError(f"{p}: not a regular file (a pipe, socket or device); copy the audio to a file first")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes); re-download or re-export it")
    return p


_MP3_KBPS = {  # kbit/s by (MPEG-1?, layer III?) indexed by the header's bitrate index
    (True, True): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (True, False): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (False, True): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, False): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(buf: mmap.mmap, pos: int) -> int:
    """Length in bytes of the MPEG layer II/III frame whose header starts at ``pos``, or 0."""
    if buf[pos] != 0xFF:
        return 0
    b1, b2 = buf[pos + 1], buf[pos + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    br_idx, sr_idx, pad = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if (b1 & 0xE0) != 0xE0 or version == 1 or layer not in (1, 2) or br_idx in (0, 15) or sr_idx == 3:
        return 0
    mpeg1, layer3 = version == 3, layer == 1
    coef = 144 if (mpeg1 or not layer3) else 72
    return coef * _MP3_KBPS[(mpeg1, layer3)][br_idx] * 1000 // _MP3_RATES[version][sr_idx] + pad


def _mp3_problem(path: Path) -> str | None:
    """Why an .mp3 file cannot be decoded properly, or None when its frame stream looks whole.

    Finds the first valid frame header after any ID3v2 tag (within 1 MB), then walks the
    frames. No frame at all: not an mp3. A final frame whose declared length runs past the
    end of the file: truncated. Anything after the last frame (ID3v1/APE tags, padding) is
    tolerated. Checking first also keeps libsndfile's decoder from printing notes on stderr.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        size = len(buf)
        pos = 0
        if buf[:3] == b"ID3" and size >= 10:
            pos = 10 + ((buf[6] & 0x7F) << 21 | (buf[7] & 0x7F) << 14 | (buf[8] & 0x7F) << 7 | (buf[9] & 0x7F))
        limit = min(size - 4, pos + (1 << 20))
        while pos <= limit:
            pos = buf.find(b"\xff", pos, limit + 1)
            if pos < 0:
                break
            length = _mp3_frame_length(buf, pos)
            if length and (pos + length + 4 > size or _mp3_frame_length(buf, pos + length)):
                break  # a frame followed by another frame (or by the end): the stream starts here
            pos += 1
        else:
            pos = -1
        if pos < 0:
            return "not an mp3 file (no MPEG audio frames found); check the file type or re-download it"
        while pos + 4 <= size:
            length = _mp3_frame_length(buf, pos)
            if not length:
                return None
            if pos + length > size:
                return "truncated mp3 (the last frame is cut short); re-download or re-encode the file"
            pos += length
        return None


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file (no decoding)."""
    p = _check_path(path)
    problem = _mp3_problem(p) if p.suffix.lower() in (".mp3", ".mp2") else None
    if problem:
        raise AudioError(f"{p}: {problem}")
    try:
        with open(p, "rb") as fh, sf.SoundFile(fh) as f:
            return AudioInfo(p, int(f.samplerate), int(f.channels), int(f.frames), f.frames / f.samplerate,
                             str(f.format))
    except Exception as exc:  # noqa: BLE001  (libsndfile reports unknown formats with misleading messages)
        why = _reason(exc)
    if audio_av.available():
        try:
            rate, channels, frames, fmt = audio_av.probe(p)
            return AudioInfo(p, rate, channels, frames, frames / rate, fmt, "av")
        except Exception as exc:  # noqa: BLE001  (FFmpeg's own error types)
            why = f"{why}; FFmpeg: {_reason(exc)}"
    elif audio_av.looks_like_ffmpeg_only(p):
        raise AudioError(f"{p}: unsupported format for libsndfile (AAC/m4a, Opus, WebM, WMA...); install the "
                         f"decoder: {install_hint('av')}")
    raise AudioError(f"{p}: not a readable audio file ({why}); supported: wav, flac, ogg, mp3, aiff"
                     + ("" if audio_av.available() else f", and with {install_hint('av')} m4a/aac/opus/webm/wma"))


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if text.startswith("Error opening") and "': " in text:
        text = text.split("': ", 1)[1]
    return text.replace("File does not exist or is not a regular file (possibly a pipe?).", "format not recognised")


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
    """Yield decoded blocks (float32; ``(n,)`` if mono else ``(channels, n)``) at rate ``sr``.

    ``sr=None`` keeps the native rate. ``offset`` and ``duration`` are in seconds. Pass the
    :class:`AudioInfo` from :func:`info` instead of a path to skip reading the header twice.
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
    read = 0
    try:
        blocks = _native_blocks(meta, start, remaining, block_frames)
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
        raise AudioError(f"{p}: decoding failed ({_reason(exc)}); the file may be corrupt") from None
    expected = (meta.frames - start) if remaining is None else min(int(round(duration * native)), meta.frames - start)
    exact = meta.decoder == "sndfile" and meta.format not in ("MPEG", "MP3")  # mp3 frame counts are estimates
    if exact and meta.frames and read < expected - native // 10:
        warnings.warn(f"{p}: truncated: the header promises {expected / native:.2f} s but only {read / native:.2f} s "
                      "could be decoded; results cover the part that is there", MERWarning, stacklevel=2)
    elif meta.format == "WAV" and start == 0 and remaining is None and read:  # no samples at all: an error later
        missing = wav_missing_bytes(p)
        if missing:
            warnings.warn(f"{p}: truncated WAV: {missing} bytes of audio the header declares are missing; results "
                          "cover the part that is there", MERWarning, stacklevel=2)


def wav_missing_bytes(path: Path) -> int:
    """How many bytes of the ``data`` chunk a WAV header declares beyond the end of the file
    (libsndfile quietly reads what is there)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
        size = fh.seek(0, os.SEEK_END)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(head):
        cid, n = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"data":
            return max(0, pos + 8 + n - size) if n != 0xFFFFFFFF else 0
        pos += 8 + n + (n & 1)
    return 0


def _native_blocks(meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
    """Float32 ``(frames, channels)`` blocks at the native rate from the file's decoder."""
    if meta.decoder == "av":
        yield from audio_av.blocks(meta.path, start, remaining, block_frames, meta.channels)
        return
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


def load(
    path: str | os.PathLike,
    sr: int | None = None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 at ``sr`` Hz (native if None); return ``(y, sr)``.

    ``y`` has shape ``(n,)`` when ``mono`` else ``(channels, n)``. Warns (MERWarning) when
    the audio is silent or shorter than a second; raises AudioError when it has no samples.
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


def _walk(root: Path, recursive: bool) -> Iterator[Path]:
    """Audio files under ``root``, following symlinked folders (each real folder once, so a
    link loop ends); hidden files and folders skipped; an unreadable folder is a warning."""
    seen: set[str] = set()

    def unreadable(err: OSError) -> None:
        warnings.warn(f"{err.filename}: folder cannot be read ({err.strerror}); its files were skipped", MERWarning,
                      stacklevel=4)

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=unreadable):
        real = os.path.realpath(folder)
        if real in seen:  # a link back to a folder already searched
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in files:
            f = Path(folder) / name
            if not name.startswith(".") and f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file():
                yield f


def find_audio(paths: Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of audio files (hidden files skipped).

    Files named explicitly are kept whatever their extension, so that a bad file gets an
    error rather than being silently ignored; missing paths raise AudioError.
    """
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(_walk(p, recursive)))
        elif p.exists():
            found.append(p)
        else:
            raise AudioError(f"{p}: no such file or folder; check the path")
    return found
