"""What a file is before decoding it: the path checks, the leading bytes, the mp3 frame walk,
the WAV data chunk, and :class:`AudioInfo` (what :func:`mer.audio.info` returns).

Pure inspection: nothing here decodes audio. :mod:`mer.audio.decoders` and
:mod:`mer.audio.read` build on it.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import AudioError, install_hint

#: Extensions libsndfile reads, and those only the PyAV decoder does.
SNDFILE_EXTENSIONS = frozenset({".wav", ".w64", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".aif", ".aiff",
                                ".aifc", ".au", ".caf"})
PYAV_EXTENSIONS = frozenset({".m4a", ".m4b", ".aac", ".mp4", ".3gp", ".webm", ".weba", ".mka", ".wma", ".ac3",
                             ".eac3", ".alac", ".amr"})
#: File extensions treated as audio when a folder is searched.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | PYAV_EXTENSIONS
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


def check_path(path: str | os.PathLike) -> Path:
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


def mp3_frame_length(buf: mmap.mmap, pos: int) -> int:
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


def mp3_problem(path: Path) -> str | None:
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
            length = mp3_frame_length(buf, pos)
            if length and (pos + length + 4 > size or mp3_frame_length(buf, pos + length)):
                break  # a frame followed by another frame (or by the end): the stream starts here
            pos += 1
        else:
            pos = -1
        if pos < 0:
            return "not an mp3 file (no MPEG audio frames found); check the file type or re-download it"
        while pos + 4 <= size:
            length = mp3_frame_length(buf, pos)
            if not length:
                return None
            if pos + length > size:
                return "truncated mp3 (the last frame is cut short); re-download or re-encode the file"
            pos += length
        return None


def import_av() -> ModuleType | None:
    """PyAV, or None when it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def leading_bytes(path: Path) -> bytes:
    """The first 64 bytes of the file, or of what follows its ID3v2 tag (mp3 and raw AAC may have one)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:3] == b"ID3" and len(head) >= 10:
            fh.seek(10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)))
            head = fh.read(64)
        return head


def pyav_magic(head: bytes) -> bool:
    """Whether the leading bytes are a container or stream only PyAV reads (MP4, Matroska/WebM,
    ASF/WMA, ADTS AAC, AC-3, AMR) or Ogg (libsndfile reads most, PyAV the rest)."""
    return (head[4:8] == b"ftyp" or head.startswith((b"\x1aE\xdf\xa3", b"0&\xb2u\x8ef\xcf\x11", b"\x0bw", b"#!AMR",
                                                     b"OggS"))
            or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0))


def needs_pyav(path: Path, head: bytes) -> bool:
    """Whether a file libsndfile refused is one PyAV would probably read: by its leading bytes,
    or by its extension unless it is plain text."""
    return pyav_magic(head) or (path.suffix.lower() in PYAV_EXTENSIONS and not is_text(head))


def is_text(head: bytes) -> bool:
    """Whether the leading bytes look like plain text (UTF-8, no control characters but whitespace)."""
    for cut in range(4):  # the last character may be cut in two
        try:
            decoded = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\r\n\t" for c in decoded)
    return False


def reason(exc: BaseException) -> str:
    """One short line from a decoder's exception (no paths, no errno)."""
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    if text.startswith("Error opening"):
        text = text.split(">: ", 1)[-1] if ">: " in text else text.split("': ", 1)[-1]
    text = text.replace("File does not exist or is not a regular file (possibly a pipe?).", "format not recognised")
    return text.rstrip(".")[:1].lower() + text.rstrip(".")[1:]


OGG_MAX_PAGE = 27 + 255 + 255 * 255  # header, lacing table, body: the largest page the format allows


def _ogg_page_end(buf: bytes, pos: int) -> int | None:
    """End offset of the Ogg page whose header starts at ``pos`` (may lie past ``buf``), or None
    when its header or lacing table is itself cut off, or -1 when it is no page header (version
    0, only the three defined flag bits)."""
    if pos + 6 <= len(buf) and (buf[pos + 4] != 0 or buf[pos + 5] & ~0x07):
        return -1
    if pos + 27 > len(buf) or pos + 27 + buf[pos + 26] > len(buf):
        return None
    n = buf[pos + 26]
    return pos + 27 + n + sum(buf[pos + 27:pos + 27 + n])


def ogg_truncation(path: Path) -> str | None:
    """Why an Ogg file (Vorbis, Opus, FLAC in Ogg) looks cut off, or None when it ends whole.

    Ogg files declare no length: decoders take it from the last page, so a file cut in half
    decodes as a shorter, apparently fine file. Walks the pages of the last two maximum page
    sizes from the first ``OggS`` whose page chain reaches the end of the file: a last page
    that runs past the end, or a whole last page without the end-of-stream flag, is a cut.
    A chain must pass one page boundary (or start the file) before it is trusted, so ``OggS``
    bytes inside compressed audio are not mistaken for a page."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        first = max(0, size - 2 * OGG_MAX_PAGE)
        fh.seek(first)
        tail = fh.read()
    start = tail.find(b"OggS")
    while start >= 0:
        pos, links = start, 0
        while True:
            end = _ogg_page_end(tail, pos)
            trusted = links > 0 or first + start == 0
            if end == -1:
                break
            if end is None or end > len(tail) or (0 < len(tail) - end < 4 and b"OggS".startswith(tail[end:])):
                if trusted:
                    return "truncated Ogg file: its last page is cut short"
                break
            if end == len(tail):
                if trusted and not tail[pos + 5] & 0x04:
                    return "truncated Ogg file: it ends without an end-of-stream page"
                if trusted:
                    return None
                break
            if tail[end:end + 4] != b"OggS":
                break
            pos, links = end, links + 1
        start = tail.find(b"OggS", start + 1)
    return None


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
