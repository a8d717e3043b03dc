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

import shutil  # noqa: F401  (mer.tags.shutil: the module the writer copies with)

from .fields import (DECIMALS, FIELDS, KEYS, MER_MOODS, MOOD, MOOD_VALUES, MP4_PREFIX, SCALE, TOP_WORDS, WORD_PREFIX,
                     WORD_SEP, Changes, Emotion, TagField, TagSkip, describe, is_mers, plan, same_model, word_key,
                     word_text)
from .formats import FAMILIES, SUPPORTED, _by_content, _open, read
from .writer import check, write

__all__ = ["DECIMALS", "FAMILIES", "FIELDS", "KEYS", "MER_MOODS", "MOOD", "MOOD_VALUES", "MP4_PREFIX", "SCALE",
           "SUPPORTED", "TOP_WORDS", "WORD_PREFIX", "WORD_SEP", "Changes", "Emotion", "TagField", "TagSkip", "check",
           "describe", "is_mers", "plan", "read", "same_model", "word_key", "word_text", "write", "_by_content",
           "_open"]
