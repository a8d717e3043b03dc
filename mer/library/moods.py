"""Mood words -> points of the valence-arousal plane (mer's canonical scale, [-1, 1] each).

``MOODS`` maps 54 common mood words to a (valence, arousal) point. The placements were
written for mer (no third-party data is copied; they ship under mer's own licence): each
word is put at an angle on Russell's circumplex of affect (Russell, J. A. (1980), "A
circumplex model of affect", J. Personality and Social Psychology 39(6), 1161-1178),
counter-clockwise from the positive valence axis, following the angular order of the 28
affect terms of its scaling figure (pleased, glad, happy, delighted, excited, astonished,
aroused, tense, alarmed, angry, afraid, annoyed, distressed, frustrated, miserable, sad,
gloomy, depressed, bored, droopy, tired, sleepy, calm, relaxed, satisfied, at ease,
content, serene), and at an intensity (distance from the centre, 0.4-0.95) for how strong
the word is; words that are not among the 28 (energetic, melancholic, peaceful, chill...)
sit beside their nearest Russell term and in the quadrant mer names them by (Q1
happy/excited, Q2 angry/tense, Q3 sad/depressed, Q4 calm/relaxed). Then valence =
intensity x cos(angle), arousal = intensity x sin(angle), rounded to 2 decimals; the angle
is kept in the table for reference.

Not used, on purpose: the Warriner et al. (2013) valence/arousal norms in
``../shared/data/lexicons`` are licensed CC BY-NC-ND; they must not be shipped with mer or
used to make this table.

A mood is used as a *point*: songs are ranked by Euclidean distance to it
(:func:`mood_point`); ``"V,A"`` (two numbers in [-1, 1]) is accepted wherever a mood word is
(:func:`parse_mood`).
"""

from __future__ import annotations

from .store import LibraryError

#: (word, valence, arousal, angle in degrees) on the canonical scale [-1, 1]
TABLE: tuple[tuple[str, float, float, int], ...] = (
    # Q1: positive valence, high arousal (happy / excited)
    ("excited", 0.64, 0.64, 45),
    ("happy", 0.80, 0.29, 20),
    ("delighted", 0.75, 0.40, 28),
    ("joyful", 0.72, 0.45, 32),
    ("cheerful", 0.70, 0.28, 22),
    ("energetic", 0.43, 0.74, 60),
    ("euphoric", 0.73, 0.61, 40),
    ("astonished", 0.27, 0.75, 70),
    ("aroused", 0.15, 0.84, 80),
    ("uplifting", 0.61, 0.35, 30),
    ("triumphant", 0.63, 0.49, 38),
    ("playful", 0.49, 0.34, 35),
    ("glad", 0.68, 0.15, 12),
    ("pleased", 0.70, 0.06, 5),
    ("hopeful", 0.48, 0.13, 15),
    # Q2: negative valence, high arousal (angry / tense)
    ("tense", -0.07, 0.80, 95),
    ("alarmed", -0.16, 0.89, 100),
    ("afraid", -0.27, 0.75, 110),
    ("fearful", -0.30, 0.74, 112),
    ("angry", -0.42, 0.74, 120),
    ("furious", -0.40, 0.86, 115),
    ("aggressive", -0.28, 0.86, 108),
    ("annoyed", -0.39, 0.46, 130),
    ("frustrated", -0.54, 0.45, 140),
    ("anxious", -0.18, 0.68, 105),
    ("nervous", -0.14, 0.64, 102),
    ("distressed", -0.66, 0.46, 145),
    # Q3: negative valence, low arousal (sad / depressed)
    ("miserable", -0.80, -0.07, 185),
    ("sad", -0.69, -0.40, 210),
    ("gloomy", -0.61, -0.43, 215),
    ("depressed", -0.65, -0.55, 220),
    ("melancholic", -0.52, -0.30, 210),
    ("lonely", -0.54, -0.25, 205),
    ("heartbroken", -0.76, -0.25, 198),
    ("sombre", -0.42, -0.42, 225),
    ("nostalgic", -0.28, -0.28, 225),
    ("bored", -0.30, -0.52, 240),
    ("droopy", -0.21, -0.56, 250),
    ("tired", -0.12, -0.69, 260),
    ("sleepy", -0.03, -0.80, 268),
    # Q4: positive valence, low arousal (calm / relaxed)
    ("calm", 0.51, -0.61, 310),
    ("relaxed", 0.57, -0.57, 315),
    ("serene", 0.59, -0.54, 318),
    ("peaceful", 0.54, -0.59, 312),
    ("tranquil", 0.46, -0.66, 305),
    ("soothing", 0.45, -0.54, 310),
    ("chill", 0.46, -0.39, 320),
    ("mellow", 0.42, -0.42, 315),
    ("dreamy", 0.21, -0.56, 290),
    ("at ease", 0.61, -0.43, 325),
    ("content", 0.65, -0.38, 330),
    ("satisfied", 0.68, -0.32, 335),
    ("tender", 0.43, -0.25, 330),
    ("romantic", 0.52, -0.19, 340),
)

#: word -> (valence, arousal)
MOODS: dict[str, tuple[float, float]] = {w: (v, a) for w, v, a, _ in TABLE}
_ALIASES = {"somber": "sombre", "melancholy": "melancholic", "relaxing": "relaxed", "scared": "afraid",
            "mad": "angry", "joyous": "joyful", "peace": "peaceful", "calming": "calm", "at-ease": "at ease"}


def mood_point(word: str) -> tuple[float, float]:
    """(valence, arousal) of a mood word (case-insensitive); an unknown word lists the known ones."""
    key = " ".join(word.lower().replace("_", " ").split())
    key = _ALIASES.get(key, key)
    if key not in MOODS:
        raise LibraryError(f"unknown mood {word!r}; known moods: {', '.join(sorted(MOODS))} "
                           "(or give a point as --va VALENCE,AROUSAL)")
    return MOODS[key]


def parse_va(text: str) -> tuple[float, float]:
    """``"0.6,-0.4"`` -> (0.6, -0.4); both must lie in [-1, 1] (the canonical scale)."""
    parts = text.replace(" ", "").split(",")
    try:
        v, a = (float(x) for x in parts)
    except ValueError:
        raise LibraryError(f"{text!r}: write a point as VALENCE,AROUSAL, two numbers in [-1, 1], "
                           "e.g. 0.6,-0.4") from None
    if not (-1 <= v <= 1 and -1 <= a <= 1):
        raise LibraryError(f"{text!r}: valence and arousal are on the canonical scale [-1, 1]")
    return v, a


def parse_mood(text: str) -> tuple[float, float]:
    """A mood word or a ``"V,A"`` point -> (valence, arousal)."""
    if "," in text:
        return parse_va(text)
    return mood_point(text)
