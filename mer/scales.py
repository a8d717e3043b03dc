"""Valence/arousal scales and Russell's quadrants.

Inside mer every label and prediction is on ONE canonical scale: valence and arousal in
[-1, 1], 0 neutral. Tensors and arrays always hold (valence, arousal) in that order.

Source scales known here:

- ``"canonical"`` ([-1, 1]): DEAM/emoMusic dynamic annotations, mer's own outputs.
- ``"1-9"``: DEAM/emoMusic static annotations, Warriner et al. norms (5 neutral);
  ``(x - 5) / 4``.
- ``"0-1"``: PMEmo (0.5 neutral); ``2x - 1``.

Quadrants follow Russell's circumplex: Q1 = +valence +arousal (happy/excited),
Q2 = -valence +arousal (angry/tense), Q3 = -valence -arousal (sad/depressed),
Q4 = +valence -arousal (calm/relaxed). A value of exactly 0 counts as positive, so a
quadrant always follows from the reported numbers and the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from .errors import ConfigError

ArrayLike = Union[float, np.ndarray]


@dataclass(frozen=True)
class Scale:
    """A linear valence/arousal scale: ``canonical = (x - center) / half_range``."""

    name: str
    low: float
    high: float

    @property
    def center(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def half_range(self) -> float:
        return (self.high - self.low) / 2.0


SCALES: dict[str, Scale] = {
    "canonical": Scale("canonical", -1.0, 1.0),
    "1-9": Scale("1-9", 1.0, 9.0),
    "0-1": Scale("0-1", 0.0, 1.0),
}
_ALIASES = {"-1-1": "canonical", "[-1,1]": "canonical", "deam": "1-9", "pmemo": "0-1"}


def get_scale(name: str | Scale) -> Scale:
    """Look a scale up by name (``"canonical"``, ``"1-9"``, ``"0-1"`` or an alias)."""
    if isinstance(name, Scale):
        return name
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in SCALES:
        raise ConfigError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[key]


def to_canonical(x: ArrayLike, scale: str | Scale) -> ArrayLike:
    """Convert values on ``scale`` to the canonical [-1, 1] scale."""
    s = get_scale(scale)
    return _same_kind(x, (np.asarray(x, dtype=np.float64) - s.center) / s.half_range)


def from_canonical(x: ArrayLike, scale: str | Scale) -> ArrayLike:
    """Convert canonical [-1, 1] values to ``scale``."""
    s = get_scale(scale)
    return _same_kind(x, np.asarray(x, dtype=np.float64) * s.half_range + s.center)


def _same_kind(x: ArrayLike, out: np.ndarray) -> ArrayLike:
    """Return a Python float for scalar input, the array otherwise."""
    return float(out) if np.ndim(x) == 0 else out


@dataclass(frozen=True)
class Quadrant:
    """One of Russell's four quadrants."""

    number: int  # 1..4
    name: str  # "Q1"
    words: str  # "happy/excited"
    valence_sign: int  # +1 or -1
    arousal_sign: int


QUADRANTS: dict[str, Quadrant] = {
    "Q1": Quadrant(1, "Q1", "happy/excited", +1, +1),
    "Q2": Quadrant(2, "Q2", "angry/tense", -1, +1),
    "Q3": Quadrant(3, "Q3", "sad/depressed", -1, -1),
    "Q4": Quadrant(4, "Q4", "calm/relaxed", +1, -1),
}


def quadrant(valence: float, arousal: float) -> Quadrant:
    """The quadrant of one canonical (valence, arousal) point; 0 counts as positive."""
    if not (np.isfinite(valence) and np.isfinite(arousal)):
        raise ConfigError(f"valence and arousal must be finite numbers, got ({valence}, {arousal}); "
                          "check the model's output or the labels for NaN")
    v_pos, a_pos = valence >= 0, arousal >= 0
    return QUADRANTS["Q1" if v_pos and a_pos else "Q2" if a_pos else "Q3" if not v_pos else "Q4"]


def quadrant_index(valence: np.ndarray, arousal: np.ndarray) -> np.ndarray:
    """Vectorised quadrant numbers (1..4, int) for arrays of canonical values."""
    v_pos = np.asarray(valence) >= 0
    a_pos = np.asarray(arousal) >= 0
    return np.where(a_pos, np.where(v_pos, 1, 2), np.where(v_pos, 4, 3)).astype(np.int64)


def quadrant_center(name: str) -> tuple[float, float]:
    """A representative canonical point for a quadrant label, e.g. ``"Q2"`` -> (-0.5, 0.5)."""
    q = QUADRANTS.get(str(name).upper())
    if q is None:
        raise ConfigError(f"unknown quadrant {name!r}; expected one of Q1, Q2, Q3, Q4")
    return 0.5 * q.valence_sign, 0.5 * q.arousal_sign
