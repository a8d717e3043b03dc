"""How each tag format holds mer's fields (ID3v2.4, Vorbis comments, MP4 atoms), opening a file
by its content, and reading mer's fields back; mutagen is imported inside the functions."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..errors import AudioError
from .fields import KEYS, MOOD, MP4_PREFIX, WORD_PREFIX, TagSkip

class _Family:
    """How one tag format reads and writes a field (``key`` is a :data:`KEYS` name or MOOD)."""

    name = ""
    mood_last = False  # where mer's MOOD value goes among the user's (see plan)

    def get(self, tags: Any, key: str) -> list[str]:
        raise NotImplementedError

    def put(self, tags: Any, key: str, values: list[str] | None) -> None:
        raise NotImplementedError

    def keys(self, tags: Any) -> list[str]:
        """The names (upper case) of the free-form fields in ``tags`` (for mer's per-word fields)."""
        raise NotImplementedError

    def save(self, audio: Any) -> None:
        audio.save()


class _ID3(_Family):
    """ID3v2.4: ``TXXX:KEY`` frames (description compared without case) and ``TMOO``."""

    name = "ID3v2.4"

    def _frames(self, tags: Any, key: str) -> list[Any]:
        return tags.getall("TMOO") if key == MOOD else [f for f in tags.getall("TXXX") if f.desc.upper() == key]

    def get(self, tags: Any, key: str) -> list[str]:
        return [str(t) for f in self._frames(tags, key) for t in f.text]

    def put(self, tags: Any, key: str, values: list[str] | None) -> None:
        from mutagen.id3 import TMOO, TXXX, Encoding

        for f in self._frames(tags, key):
            del tags[f.HashKey]
        if values:
            tags.add(TMOO(encoding=Encoding.UTF8, text=values) if key == MOOD
                     else TXXX(encoding=Encoding.UTF8, desc=key, text=values))

    def keys(self, tags: Any) -> list[str]:
        return [f.desc.upper() for f in tags.getall("TXXX")]

    def save(self, audio: Any) -> None:
        audio.save(v2_version=4)


class _Vorbis(_Family):
    """Vorbis comments (FLAC, Ogg): ``KEY=value``, names compared without case."""

    name = "Vorbis comments"
    mood_last = True  # ffprobe and MediaInfo join every MOOD entry; exiftool shows the last one

    def get(self, tags: Any, key: str) -> list[str]:
        return list(tags.get(key, []))

    def put(self, tags: Any, key: str, values: list[str] | None) -> None:
        if values:
            tags[key] = values  # replaces every entry of that name
        elif key.lower() in (k.lower() for k in tags.keys()):
            del tags[key]

    def keys(self, tags: Any) -> list[str]:
        return [k.upper() for k in tags.keys()]


class _MP4(_Family):
    """MP4 freeform atoms ``----:com.apple.iTunes:KEY`` (UTF-8)."""

    name = "MP4"

    def _names(self, tags: Any, key: str) -> list[str]:
        return [k for k in tags.keys() if k.upper() == (MP4_PREFIX + key).upper()]

    def get(self, tags: Any, key: str) -> list[str]:
        return [bytes(v).decode("utf-8", "replace") for k in self._names(tags, key) for v in tags[k]]

    def put(self, tags: Any, key: str, values: list[str] | None) -> None:
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        for k in self._names(tags, key):
            del tags[k]
        if values:
            tags[MP4_PREFIX + key] = [MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values]

    def keys(self, tags: Any) -> list[str]:
        return [k[len(MP4_PREFIX):].upper() for k in tags.keys() if k.upper().startswith(MP4_PREFIX.upper())]


#: mutagen file class name -> the tag format mer writes in it
FAMILIES: dict[str, _Family] = {
    **dict.fromkeys(("MP3", "WAVE", "AIFF"), _ID3()),
    **dict.fromkeys(("FLAC", "OggVorbis", "OggOpus", "OggFLAC", "OggSpeex"), _Vorbis()),
    "MP4": _MP4(),
}
SUPPORTED = "MP3, WAV, AIFF (ID3v2.4), FLAC, Ogg, Opus (Vorbis comments) and M4A (MP4 atoms)"


class _Nameless(io.RawIOBase):
    """A file read without its name, so mutagen judges the format by the content alone."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self.fh.readinto(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()


def _by_content(path: Path) -> Any:
    """The file opened as the format its bytes are (an MP3 named .flac is an MP3, as ``mer
    predict``'s decoder reads it), or None."""
    import mutagen

    try:
        with open(path, "rb") as fh:
            guess = mutagen.File(_Nameless(fh))
        return None if guess is None else type(guess)(path)
    except (mutagen.MutagenError, OSError):
        return None


def _id3_claim(path: Path) -> str | None:
    """Why the ID3v2 header cannot be right (a tag larger than the file), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(10)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return None
    claimed = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    if claimed + 10 <= size:
        return None
    return (f"its ID3 tag header claims {claimed / 1e6:.1f} MB, more than the whole file "
            f"({size / 1e6:.1f} MB): the tag is damaged")


def _open(path: Path) -> tuple[Any, _Family]:
    """(the mutagen file, with tags added when it had none; its format), or TagSkip / AudioError."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        audio = _by_content(path)  # the extension may lie: judge by the bytes, as the decoder does
        if audio is None:
            why = _id3_claim(path) or str(exc).strip() or type(exc).__name__
            raise AudioError(f"{path}: its tags cannot be read ({why}); mer leaves it as it is (repair or "
                             "remove the damaged tag with a tag editor, or check it is a whole audio file)") from None
    if audio is None:
        raise TagSkip(f"{path}: no tag format mer writes (not a format mutagen knows); mer tags {SUPPORTED}")
    family = FAMILIES.get(type(audio).__name__)
    if family is None:
        raise TagSkip(f"{path}: no tag format mer writes ({type(audio).__name__}); mer tags {SUPPORTED}")
    if audio.tags is None:
        audio.add_tags()
    return audio, family


def read(path: str | os.PathLike) -> dict[str, list[str]]:
    """mer's fields and the MOOD values of a file, as written.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file in a format mer tags (ID3v2 in MP3, WAV, AIFF; Vorbis comments in FLAC,
        Ogg, Opus; MP4 atoms in M4A), judged by its bytes, not its extension.

    Returns
    -------
    dict of str to list of str
        ``{key: values}`` for the fields present, absent ones left out: ``VALENCE``,
        ``AROUSAL`` (text, 0-1, three decimals), ``MOOD_HAPPY`` .. ``MOOD_RELAXED``,
        ``MER_QUADRANT``, ``MER_MODEL``, ``MER_MODEL_VERSION``, ``MER_WEIGHTS_SHA1``, every
        ``MER_MOOD_<WORD>``, and ``MOOD`` with all its values (the user's and mer's, in the
        file's order). :meth:`Emotion.from_tags` turns such fields back into an emotion.

    Raises
    ------
    TagSkip
        A format without a tag mer writes.
    mer.AudioError
        Tags that cannot be read (a damaged tag, or not a whole audio file).

    Examples
    --------
    >>> tags.read("song.mp3")["MOOD"]  # doctest: +SKIP
    ['Q1 happy excited · spicy · sensual · exciting']
    """
    return _current(*_open(Path(path)))


def _current(audio: Any, family: _Family) -> dict[str, list[str]]:
    words = [k for k in dict.fromkeys(family.keys(audio.tags)) if k.startswith(WORD_PREFIX)]
    found = {key: family.get(audio.tags, key) for key in (*KEYS, *words, MOOD)}
    return {k: v for k, v in found.items() if v}
