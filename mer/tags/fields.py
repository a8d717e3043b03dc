"""mer's tag fields and the emotion they carry: names, scales, MOOD values, and the changes
that make a file's tags say an emotion (:func:`plan`). No mutagen and no file access here; see
:mod:`mer.tags` for the whole picture."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import MERError
from ..scales import QUADRANTS, from_canonical, to_canonical

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
