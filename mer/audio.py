"""Audio decoding at any rate, in bounded memory, through one of two decoders chosen per file.

- **libsndfile** (``soundfile``, always installed, no ffmpeg needed): WAV/W64, FLAC, Ogg
  Vorbis and Opus, MP3 and MP2, AIFF, AU, CAF.
- **PyAV** (FFmpeg inside its wheels; the optional extra ``[formats]``): whatever libsndfile
  cannot open or decode: AAC in ``.m4a``/``.mp4``/``.aac``, Opus and Vorbis in WebM/Matroska,
  WMA, AC-3/E-AC-3, ALAC, AMR, and the rare Ogg Opus file libsndfile rejects. ``av`` is
  imported only when a file needs it.

:func:`info` picks the decoder once per file (libsndfile if it opens the file and decodes its
first samples, else PyAV) and records it in :class:`AudioInfo`; :func:`stream` asks that
decoder for float32 ``(frames, channels)`` blocks at the native rate and does the rest (NaN
check, mixing, soxr resampling) the same way for both.

Shapes and units:

- ``load`` returns ``(y, sr)``: ``y`` is float32 in [-1, 1], shape ``(n,)`` when ``mono``
  is true, else ``(channels, n)``; ``sr`` in Hz.
- ``stream`` yields blocks of the same layout, so an hour-long file never needs to be in
  memory at its native rate; resampling (soxr, "HQ") is streamed across block edges, so the
  concatenated blocks equal what ``load`` returns.

Errors are :class:`AudioError` naming the file: missing path, a directory or other
non-regular file, an empty file, a file no decoder can read (and, when only PyAV could and
it is not installed, which ``pip install`` adds it), an mp3 whose last frame is cut short,
NaN or infinite samples, a file with no samples, an offset past the end. Silent (peak below
-80 dBFS), very short (< 1 s), truncated (fewer samples than the header says) or
far-outside-[-1, 1] audio gives a :class:`MERWarning`, not an error. Files are opened through
Python file objects (by both decoders), so names that are not valid UTF-8 work too.
"""

from __future__ import annotations

import itertools
import mmap
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator, Protocol

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError, MERWarning, install_hint

#: Extensions libsndfile reads, and those only the PyAV decoder does.
SNDFILE_EXTENSIONS = frozenset({".wav", ".w64", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".aif", ".aiff",
                                ".aifc", ".au", ".caf"})
PYAV_EXTENSIONS = frozenset({".m4a", ".m4b", ".aac", ".mp4", ".3gp", ".webm", ".weba", ".mka", ".wma", ".ac3",
                             ".eac3", ".alac", ".amr"})
#: File extensions treated as audio when a folder is searched.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | PYAV_EXTENSIONS
BLOCK_FRAMES = 1 << 20  # frames read per block at the native rate (~24 s at 44.1 kHz)
SILENCE_PEAK = 1e-4  # -80 dBFS
SHORT_SECONDS = 1.0
PYAV_SEEK_SECONDS = 30.0  # PyAV files: offsets beyond this seek (else decode from the start and drop)
PYAV_INSTALL = f"unsupported format by libsndfile; install the decoder: {install_hint('av')}"


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: native rate (Hz), channels, frames (0 when unknown), duration
    (s), format, and which decoder reads it (``"sndfile"`` or ``"av"``)."""

    path: Path
    samplerate: int
    channels: int
    frames: int
    duration: float
    format: str
    decoder: str = "sndfile"


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
    """Read the header of an audio file and choose its decoder (decodes only its first samples)."""
    p = _check_path(path)
    head = _head(p)
    if p.suffix.lower() in (".mp3", ".mp2") and not _pyav_magic(head):  # an m4a named .mp3 goes to PyAV
        problem = _mp3_problem(p)
        if problem:
            raise AudioError(f"{p}: {problem}")
    try:
        return _SNDFILE.probe(p)
    except Exception as exc:  # noqa: BLE001  (libsndfile reports unknown formats with misleading messages)
        why = _reason(exc)
    if _import_av() is None:
        if _needs_pyav(p, head):
            raise AudioError(f"{p}: {PYAV_INSTALL}")
        raise AudioError(f"{p}: not a readable audio file ({why}); supported: wav, flac, ogg, mp3, aiff")
    try:
        return _PYAV.probe(p)
    except Exception as exc:  # noqa: BLE001  (FFmpeg's own error types)
        raise AudioError(f"{p}: not a readable audio file ({why}; FFmpeg: {_reason(exc)}); supported: wav, flac, "
                         "ogg, mp3, aiff, m4a, aac, opus, webm, wma") from None


def _import_av() -> ModuleType | None:
    """PyAV, or None when it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def _head(path: Path) -> bytes:
    """The first 64 bytes of the file, or of what follows its ID3v2 tag (mp3 and raw AAC may have one)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:3] == b"ID3" and len(head) >= 10:
            fh.seek(10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)))
            head = fh.read(64)
        return head


def _pyav_magic(head: bytes) -> bool:
    """Whether the leading bytes are a container or stream only PyAV reads (MP4, Matroska/WebM,
    ASF/WMA, ADTS AAC, AC-3, AMR) or Ogg (libsndfile reads most, PyAV the rest)."""
    return (head[4:8] == b"ftyp" or head.startswith((b"\x1aE\xdf\xa3", b"0&\xb2u\x8ef\xcf\x11", b"\x0bw", b"#!AMR",
                                                     b"OggS"))
            or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0))


def _needs_pyav(path: Path, head: bytes) -> bool:
    """Whether a file libsndfile refused is one PyAV would probably read: by its leading bytes,
    or by its extension unless it is plain text."""
    return _pyav_magic(head) or (path.suffix.lower() in PYAV_EXTENSIONS and not _is_text(head))


def _is_text(head: bytes) -> bool:
    """Whether the leading bytes look like plain text (UTF-8, no control characters but whitespace)."""
    for cut in range(4):  # the last character may be cut in two
        try:
            decoded = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\r\n\t" for c in decoded)
    return False


def _reason(exc: BaseException) -> str:
    """One short line from a decoder's exception (no paths, no errno)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    if text.startswith("Error opening"):
        text = text.split(">: ", 1)[-1] if ">: " in text else text.split("': ", 1)[-1]
    text = text.replace("File does not exist or is not a regular file (possibly a pipe?).", "format not recognised")
    return text.rstrip(".")[:1].lower() + text.rstrip(".")[1:]


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
    decoder = _DECODERS[meta.decoder]
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
        raise AudioError(f"{p}: decoding failed ({_reason(exc)}); the file may be corrupt") from None
    shortfall = decoder.shortfall(meta, start, remaining, read)
    if shortfall:
        warnings.warn(f"{p}: {shortfall}; results cover the part that is there", MERWarning, stacklevel=2)


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


class _Decoder(Protocol):
    """What :func:`stream` needs from a decoder; :func:`info` picks one per file."""

    name: str

    def probe(self, path: Path) -> AudioInfo:
        """The file's :class:`AudioInfo`; raises when this decoder cannot open it or decode its start."""

    def blocks(self, meta: AudioInfo, start: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
        """Float32 ``(frames, channels)`` blocks of at most ``block_frames`` frames at the native
        rate, from frame ``start`` on, ``remaining`` frames in all (None: to the end)."""

    def shortfall(self, meta: AudioInfo, start: int, remaining: int | None, read: int) -> str | None:
        """Why fewer frames were decoded than the file declares (it is truncated), or None."""


def _header_shortfall(meta: AudioInfo, start: int, remaining: int | None, read: int, slack: int) -> str | None:
    """The truncation note when ``read`` frames fall more than ``slack`` short of the header's count."""
    rate = meta.samplerate
    expected = meta.frames - start if remaining is None else min(remaining, meta.frames - start)
    if meta.frames and read and read < expected - slack:  # no samples at all: an error later
        return f"truncated: the header promises {expected / rate:.2f} s but only {read / rate:.2f} s could be decoded"
    return None


class _Sndfile:
    """libsndfile (through soundfile): exact frame counts except for mp3, sample-exact seeking."""

    name = "sndfile"
    _UNKNOWN = 1 << 62  # libsndfile's frame count when it cannot tell the length (SF_COUNT_MAX)

    def probe(self, path: Path) -> AudioInfo:
        with open(path, "rb") as raw, sf.SoundFile(raw) as f:
            f.read(1024, dtype="float32")  # a file libsndfile opens but cannot decode fails here, not mid-stream
            rate, channels, frames, fmt = int(f.samplerate), int(f.channels), int(f.frames), str(f.format)
        if frames >= self._UNKNOWN:  # a length libsndfile cannot tell: PyAV can, when installed
            if _import_av() is not None:
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
        short = _header_shortfall(meta, start, remaining, read, slack=meta.samplerate // 10)
        if short or meta.format != "WAV" or start or remaining is not None or not read:
            return short
        missing = wav_missing_bytes(meta.path)
        return f"truncated WAV: {missing} bytes of audio the header declares are missing" if missing else None


class _PyAV:
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
            yield from _window(_float_arrays(av, frames), start - position, remaining, block_frames)

    def shortfall(self, meta: AudioInfo, start: int, remaining: int | None, read: int) -> str | None:
        if not meta.format.startswith(self._INDEXED):  # raw streams: the length is a bitrate estimate
            return None
        return _header_shortfall(meta, start, remaining, read, slack=meta.samplerate // 10 + meta.frames // 50)

    @staticmethod
    def _av(path: Path) -> ModuleType:
        av = _import_av()
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


def _float_arrays(av: ModuleType, frames: Iterable[Any]) -> Iterator[np.ndarray]:
    """Packed float32 ``(n, channels)`` arrays of decoded PyAV frames (sample format conversion only)."""
    resampler = av.AudioResampler(format="flt")
    seen = False
    for frame in itertools.chain(frames, [None]):  # None: flush
        if frame is None and not seen:
            return
        seen = True
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1, len(out.layout.channels))


def _window(arrays: Iterable[np.ndarray], skip: int, remaining: int | None, block_frames: int) -> Iterator[np.ndarray]:
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


_SNDFILE, _PYAV = _Sndfile(), _PyAV()
_DECODERS: dict[str, _Decoder] = {d.name: d for d in (_SNDFILE, _PYAV)}


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
