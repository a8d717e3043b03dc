"""The emotion in a file's own tags: what ``mer tag`` and the beets plugin write, in one place.

Fields (the same names in every format; the beets attribute is the name in lower case):

==================  =====================================================================
``VALENCE``         valence on the 0-1 scale: 0 unpleasant, 0.5 neutral, 1 pleasant
                    (mer's canonical [-1, 1] value ``v`` is written as ``(v + 1) / 2``)
``AROUSAL``         arousal on the 0-1 scale: 0 calm, 0.5 neutral, 1 excited
``MOOD_HAPPY``      probability of Q1 happy/excited, 0-1 (models with a quadrant head)
``MOOD_AGGRESSIVE`` probability of Q2 angry/tense
``MOOD_SAD``        probability of Q3 sad/depressed
``MOOD_RELAXED``    probability of Q4 calm/relaxed
``MER_QUADRANT``    the reported quadrant, ``Q1``..``Q4``
``MER_MODEL``       the model's name, its version (``MER_MODEL_VERSION``) and the SHA-1 of its
                    weights (``MER_WEIGHTS_SHA1``): a rerun with the same weights skips the file
``MOOD``            the standard mood field; mer adds ONE value, its quadrant and words
                    (``Q4 calm relaxed``), and keeps every other value it holds, where
                    each format's readers show it (:func:`plan`)
==================  =====================================================================

Numbers are written with three decimals (``0.734``), so players that compare tags as text sort
them as numbers. The four probabilities carry the names beets' acousticbrainz plugin gave
AcousticBrainz's mood classifiers (``mood_happy``, ``mood_aggressive``, ``mood_sad``,
``mood_relaxed``), one per quadrant; AcousticBrainz's were four independent yes/no models, mer's
are one softmax over the quadrants (they sum to 1).

Formats (:data:`FAMILIES`): ID3v2.4 for MP3, WAV and AIFF (a ``TXXX`` frame per field, ``TMOO``
for the mood; an ID3v2.3 tag is saved as v2.4, its frames kept); Vorbis comments for FLAC, Ogg
Vorbis, Opus, Ogg FLAC and Speex; MP4 freeform atoms ``----:com.apple.iTunes:NAME`` for M4A/MP4
(the names Picard, foobar2000 and Navidrome use). Anything else is a :class:`TagSkip`.

Writing (:func:`write`) never touches the original in place: the file is copied beside itself,
the copy tagged and flushed, given the original's mode, owner and times (mtime unless
``touch``), and renamed over it (:func:`mer.io.atomic_path`), so a kill -9 at any moment leaves
the old file or the new one, and the audio bytes are the same. mutagen is imported only here,
inside functions, so ``mer predict`` never imports it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import AudioError, MERError
from .io import atomic_path, special_kind
from .scales import QUADRANTS, from_canonical, to_canonical

#: the scale VALENCE and AROUSAL are written on (a name of :data:`mer.scales.SCALES`)
SCALE = "0-1"
DECIMALS = 3
MOOD = "MOOD"  # the standard field (ID3 TMOO, Vorbis MOOD, MP4 ----:com.apple.iTunes:MOOD)
MP4_PREFIX = "----:com.apple.iTunes:"  # the freeform namespace of MP4 fields (iTunes, Picard, Navidrome)


@dataclass(frozen=True)
class TagField:
    """One field mer writes. ``key``: its name in files; ``source``: the field of the output
    schema (:mod:`mer.infer.schema`) it carries; ``kind``: ``real`` (3 decimals) or ``text``."""

    key: str
    source: str
    kind: str
    description: str

    @property
    def attr(self) -> str:
        """The beets attribute (flexible field) holding it: the key in lower case."""
        return self.key.lower()


_P = "probability of {}, 0-1 (acousticbrainz's name)"
FIELDS: tuple[TagField, ...] = (
    TagField("VALENCE", "valence", "real", "valence, 0 unpleasant .. 0.5 neutral .. 1 pleasant"),
    TagField("AROUSAL", "arousal", "real", "arousal, 0 calm .. 0.5 neutral .. 1 excited"),
    TagField("MOOD_HAPPY", "p_q1", "real", _P.format("Q1 happy/excited")),
    TagField("MOOD_AGGRESSIVE", "p_q2", "real", _P.format("Q2 angry/tense")),
    TagField("MOOD_SAD", "p_q3", "real", _P.format("Q3 sad/depressed")),
    TagField("MOOD_RELAXED", "p_q4", "real", _P.format("Q4 calm/relaxed")),
    TagField("MER_QUADRANT", "quadrant", "text", "Russell quadrant, Q1..Q4"),
    TagField("MER_MODEL", "model", "text", "the model's name"),
    TagField("MER_MODEL_VERSION", "model_version", "text", "the model's version"),
    TagField("MER_WEIGHTS_SHA1", "weights_sha1", "text", "SHA-1 of the model's weights"),
)
KEYS = tuple(f.key for f in FIELDS)
#: the MOOD values mer writes, one per quadrant (``Q1 happy excited``): words separated by spaces
#: only, since ID3v2.3 writers and several readers split a value at ``/``, ``;`` or ``,``
MOOD_VALUES = {q.name: f"{q.name} {q.words.replace('/', ' ')}" for q in QUADRANTS.values()}
#: every MOOD value any mer version wrote (``Q1 happy/excited`` before 2026-12-07): recognised as mer's
#: when a file is tagged again or ``--remove`` runs; every other value is the user's
MER_MOODS = frozenset(MOOD_VALUES.values()) | {f"{q.name} {q.words}" for q in QUADRANTS.values()}
#: mood words in MOOD: the quadrant's value, then the top words: ``Q4 calm relaxed · gentle · soothing``
WORD_SEP, TOP_WORDS = " · ", 3
#: one field per mood word of a mood-word model: ``MER_MOOD_CALM_PEACEFUL`` = P(calm/peaceful), 0-1
WORD_PREFIX = "MER_MOOD_"


def word_key(word: str) -> str:
    """The field of a mood word's probability: ``calm/peaceful`` -> ``MER_MOOD_CALM_PEACEFUL``."""
    return WORD_PREFIX + re.sub(r"[^A-Z0-9]+", "_", word.upper()).strip("_")


def word_text(word: str) -> str:
    """A mood word as written in MOOD, with no character a reader splits at: ``calm-peaceful``."""
    return re.sub(r"[/;,]+", "-", word)


def is_mers(mood: str) -> bool:
    """Whether a MOOD value is one mer wrote (its quadrant value, maybe followed by its top words)."""
    return mood in MER_MOODS or mood.split(WORD_SEP)[0] in MER_MOODS


class TagSkip(MERError):
    """A file ``mer tag`` leaves as it is, with the one-line reason (read-only, no tag format
    mer writes, a hard link, a link out of the given paths, not a regular file)."""


@dataclass(frozen=True)
class Emotion:
    """What a file's tags say, on mer's canonical scale; :meth:`values` gives it as written.

    Attributes
    ----------
    valence, arousal : float
        On the canonical scale [-1, 1] (written on :data:`SCALE`, 0-1, as ``(v + 1) / 2``).
    quadrant : str
        ``"Q1"``..``"Q4"``, the reported quadrant (``MER_QUADRANT``, and MOOD's first part).
    probabilities : mapping of str to float
        ``{"Q1": p, ..., "Q4": p}`` (``MOOD_HAPPY`` .. ``MOOD_RELAXED``); empty for models
        without a quadrant head.
    model, model_version, weights_sha1 : str
        The model that predicted it; a rerun of ``mer tag`` with the same skips the file.
    moods : mapping of str to float
        Mood word -> probability 0-1 (``MER_MOOD_<WORD>``; the top 3 words also go into MOOD),
        most probable first; empty for models without a mood-word head.
    """

    valence: float
    arousal: float
    quadrant: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model: str = ""
    model_version: str = ""
    weights_sha1: str = ""
    moods: Mapping[str, float] = field(default_factory=dict)  # mood word -> probability, most probable first

    @classmethod
    def from_prediction(cls, p: Any) -> "Emotion":
        """From a :class:`mer.Prediction`."""
        return cls(p.valence, p.arousal, p.quadrant, dict(p.probabilities or {}), p.model, p.model_version,
                   p.weights_sha1, dict(getattr(p, "moods", None) or {}))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Emotion":
        """From a library ``songs`` row (``mer index``): the schema's column names."""
        probs = {f"Q{i}": row[f"p_q{i}"] for i in range(1, 5) if row[f"p_q{i}"] is not None}
        import json

        words = json.loads(row["moods"]) if "moods" in row.keys() and row["moods"] else {}
        return cls(row["valence"], row["arousal"], row["quadrant"], probs, row["model"], row["model_version"] or "",
                   row["weights_sha1"] or "", words)

    @classmethod
    def from_tags(cls, found: Mapping[str, Any]) -> "Emotion":
        """From fields as written ({``VALENCE``: 0.612 or "0.612", ``MER_QUADRANT``: "Q4", ...}:
        valence and arousal on :data:`SCALE`, probabilities 0-1), as beets' attributes hold them."""
        def num(key: str) -> float | None:
            v = found.get(key)
            return None if v is None or v == "" else float(v)

        v, a = num("VALENCE"), num("AROUSAL")
        if v is None or a is None:
            raise MERError("VALENCE and AROUSAL are needed to rebuild what mer tag writes")
        names = {"MOOD_HAPPY": "Q1", "MOOD_AGGRESSIVE": "Q2", "MOOD_SAD": "Q3", "MOOD_RELAXED": "Q4"}
        probs = {q: p for key, q in names.items() if (p := num(key)) is not None}
        words = {k[len(WORD_PREFIX):].lower().replace("_", "-"): p for k in found
                 if k.upper().startswith(WORD_PREFIX) and (p := num(k)) is not None}
        return cls(float(to_canonical(v, SCALE)), float(to_canonical(a, SCALE)), str(found.get("MER_QUADRANT") or ""),
                   probs,
                   str(found.get("MER_MODEL") or ""), str(found.get("MER_MODEL_VERSION") or ""),
                   str(found.get("MER_WEIGHTS_SHA1") or ""),
                   dict(sorted(words.items(), key=lambda kv: -kv[1])))

    def values(self) -> dict[str, float | str]:
        """{key: value} of the fields this emotion fills: numbers on 0-1, rounded as written (a
        regression a little past the scale's end is written as 0 or 1), text as it is."""
        src: dict[str, Any] = {"valence": from_canonical(self.valence, SCALE),
                               "arousal": from_canonical(self.arousal, SCALE), "quadrant": self.quadrant,
                               "model": self.model, "model_version": self.model_version,
                               "weights_sha1": self.weights_sha1,
                               **{f"p_{q.lower()}": p for q, p in self.probabilities.items()}}
        out: dict[str, float | str] = {}
        for f in FIELDS:
            v = src.get(f.source)
            if v is None or v == "":
                continue
            out[f.key] = round(min(1.0, max(0.0, float(v))), DECIMALS) if f.kind == "real" else str(v)
        for word, p in self.moods.items():
            out[word_key(word)] = round(min(1.0, max(0.0, float(p))), DECIMALS)
        return out

    def text(self) -> dict[str, str]:
        """{key: the text written in files} (``0.734``, ``Q4``, ...)."""
        return {k: f"{v:.{DECIMALS}f}" if isinstance(v, float) else v for k, v in self.values().items()}

    @property
    def mood(self) -> str:
        """The MOOD value: ``Q4 calm relaxed``, then the top mood words of a mood-word model
        (``Q4 calm relaxed · gentle · soothing · sweet``)."""
        top = sorted(self.moods, key=lambda w: -self.moods[w])[:TOP_WORDS]
        return WORD_SEP.join([MOOD_VALUES[self.quadrant], *map(word_text, top)])


Changes = dict[str, "list[str] | None"]  # key -> new values (None: delete the field)


def plan(current: Mapping[str, list[str]], emotion: Emotion | None, mood_last: bool = False) -> Changes:
    """The changes that make tags ``current`` ({key: values}, as :func:`read` gives) say
    ``emotion`` (None: take mer's fields and MOOD value out); {} when they already do.

    MOOD keeps the user's values, in their order, and holds mer's one value where the format's
    readers show it: first (ID3, MP4: ffprobe and MediaInfo show only the first value), or last
    with ``mood_last`` (Vorbis comments: exiftool shows only the last)."""
    want = emotion.text() if emotion is not None else {}
    changes: Changes = {}
    words = [k for k in current if k.upper().startswith(WORD_PREFIX)] + [k for k in want if k.startswith(WORD_PREFIX)]
    for key in (*KEYS, *dict.fromkeys(words)):
        new = [want[key]] if key in want else None
        if (current.get(key) or None) != new:
            changes[key] = new
    moods = list(current.get(MOOD) or [])
    theirs, ours = [m for m in moods if not is_mers(m)], [emotion.mood] if emotion else []
    new_moods = theirs + ours if mood_last else ours + theirs
    if new_moods != moods:
        changes[MOOD] = new_moods or None
    return changes


def same_model(found: Mapping[str, Any], model: str, version: str, digest: str) -> bool:
    """Whether tags ``found`` ({key: value}, a value or a list of one) hold a prediction by this
    model: same name, version and weights digest, and a valence. A rerun skips such files
    without predicting; another model (or new weights) predicts them again."""
    def one(key: str) -> str:
        v = found.get(key)
        return str((v[0] if v else "") if isinstance(v, list) else ("" if v is None else v))
    return bool(one("VALENCE")) and (one("MER_MODEL"), one("MER_MODEL_VERSION"), one("MER_WEIGHTS_SHA1")) == (
        model, version, digest)


def describe(changes: Changes) -> str:
    """``VALENCE=0.734 AROUSAL=0.301 ... MOOD=chill; Q4 calm/relaxed`` (``-KEY``: removed)."""
    return " ".join(f"{k}={'; '.join(v)}" if v else f"-{k}" for k, v in changes.items())


# -- formats -------------------------------------------------------------------------------------

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


def check(path: str | os.PathLike, roots: list[str] | None = None) -> Path:
    """The real path ``mer tag`` would write for ``path``, or :class:`TagSkip` saying why it
    leaves the file alone. ``roots``: resolved paths the run was given (files or folders); a
    symlink whose target lies outside them is skipped, so nothing outside them is written."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    real = Path(os.path.realpath(path))
    kind = special_kind(real)
    if kind is not None:
        raise TagSkip(f"{path}: is a {kind}, not a regular file; mer tags files only")
    if roots is not None and not any(str(real) == r or str(real).startswith(r.rstrip(os.sep) + os.sep)
                                     for r in roots):
        raise TagSkip(f"{path}: links to {real}, outside the paths given; mer writes only inside them")
    st = real.stat()
    if st.st_nlink > 1:
        raise TagSkip(f"{path}: has {st.st_nlink} hard links; replacing it would leave the others untagged")
    if _immutable(real):
        raise TagSkip(f"{path}: immutable (its i attribute is set); mer leaves it as it is (chattr -i to tag it)")
    if _read_only_mount(real):
        raise TagSkip(f"{path}: on a read-only file system; mer leaves it as it is (remount it read-write to tag it)")
    if not os.access(real, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise TagSkip(f"{path}: read-only (mode {stat.filemode(st.st_mode)}); mer leaves it as it is "
                      "(chmod u+w to tag it)")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise TagSkip(f"{path}: its folder is read-only; mer writes the tagged copy beside the file and renames it")
    return real


_FS_IOC_GETFLAGS = 0x80086601  # Linux: the inode flags lsattr shows
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20


def _immutable(path: Path) -> bool:
    """Whether the file carries Linux's immutable or append-only attribute (``chattr +i``/``+a``):
    nobody, root included, may replace it."""
    flags = getattr(os.stat(path), "st_flags", None)  # BSD/macOS
    if flags is not None:
        return bool(flags & (getattr(stat, "UF_IMMUTABLE", 0) | getattr(stat, "SF_IMMUTABLE", 0)))
    try:
        import array
        import fcntl

        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            buf = array.array("l", [0])
            fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        finally:
            os.close(fd)
    except (ImportError, OSError):
        return False
    return bool(buf[0] & (_FS_IMMUTABLE_FL | _FS_APPEND_FL))


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False


def write(path: str | os.PathLike, emotion: Emotion | None, touch: bool = False, dry_run: bool = False,
          roots: list[str] | None = None) -> Changes:
    """Make the file's mer tags say ``emotion`` (None: take them out) and return the changes.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file (a symlink is followed; its target is written).
    emotion : Emotion or None
        What to write; None removes mer's fields and its MOOD value.
    touch : bool
        Let the modification time be now (default: the file keeps its own).
    dry_run : bool
        Only return the changes; write nothing.
    roots : list of str, optional
        Resolved paths the run was given; nothing outside them is written (:func:`check`).

    Returns
    -------
    dict
        ``{field: new values or None}``; empty when the file already said it (nothing written).

    Raises
    ------
    TagSkip
        For files mer leaves alone (:func:`check`), including one that another program kept
        changing while mer wrote its copy (tried twice; the other program's version is kept).
    MERError
        When the tags cannot be read or written.
    """
    from .io import FileChanged

    for attempt in (1, 2):
        try:
            return _write_once(path, emotion, touch, dry_run, roots)
        except FileChanged:
            if attempt == 2:
                raise TagSkip(f"{path}: another program kept changing it while mer was tagging it; mer left "
                              "that program's version in place (run mer tag on it again later)") from None
    raise AssertionError("unreachable")


def _write_once(path: str | os.PathLike, emotion: Emotion | None, touch: bool, dry_run: bool,
                roots: list[str] | None) -> Changes:
    """One read-copy-rename pass of :func:`write`; :class:`~mer.io.FileChanged` when the file
    changed on disk after it was read (nothing replaced)."""
    real = check(path, roots)
    before = real.stat()  # the version read below; the copy replaces only that version
    audio, family = _open(real)
    changes = plan(_current(audio, family), emotion, family.mood_last)
    if not changes or dry_run:
        return changes
    import mutagen

    with atomic_path(real, finish=_keep(real, before, touch), unchanged_since=before) as tmp:
        shutil.copyfile(real, tmp)
        copy, _ = _open(tmp)
        for key, values in changes.items():
            family.put(copy.tags, key, values)
        try:
            family.save(copy)
        except mutagen.MutagenError as exc:
            raise AudioError(f"{real}: its tags cannot be written ({exc}); the file was left as it was") from None
    return changes


def _keep(real: Path, before: os.stat_result, touch: bool) -> Callable[[Path], None]:
    """What the tagged copy gets before it replaces ``real``: its mode, times (now, if
    ``touch``) and extended attributes, and its owner; a file whose owner this user cannot
    give the copy is skipped rather than handed to someone else."""
    def finish(tmp: Path) -> None:
        if (before.st_uid, before.st_gid) != (os.stat(tmp).st_uid, os.stat(tmp).st_gid):
            try:
                os.chown(tmp, before.st_uid, before.st_gid)
            except PermissionError:
                raise TagSkip(f"{real}: belongs to another user or group (uid {before.st_uid}, gid "
                              f"{before.st_gid}); tagging it would change its owner") from None
        shutil.copystat(real, tmp)  # mode, atime/mtime, xattrs
        if touch:
            os.utime(tmp)
    return finish
