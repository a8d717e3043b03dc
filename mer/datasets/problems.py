"""What ``validate()`` reports (:class:`Problem`, :class:`ValidationReport`) and the checks
every loader applies while parsing: label ranges per source scale, and duplicate ids.

- :class:`ScaleCheck` checks the label values of one file against the declared source scale
  (a :class:`LabelScale`). A value outside the scale (beyond a 1e-6 tolerance) leaves its
  track out with a blocking "out_of_range" problem, unless the dataset was created with
  ``clip=True``: then it is clipped and one "clipped" problem counts them. When most of a
  file's values are outside, the problems say which known scale the values look like.
- :func:`unique` turns ``(key, path, line, value)`` entries into a dict: a key listed twice
  is a "duplicate" problem naming both lines; when the rows disagree the key is left out
  and the problem blocks.

A problem with ``blocking=True`` leaves its track out of the index (see
:attr:`mer.datasets.base.Dataset.index`) and stops ``mer train`` and ``mer evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import numpy as np

from ..scales import SCALES, Scale, get_scale


@dataclass
class Problem:
    """One thing ``validate()`` found wrong. ``blocking`` problems (a label outside its scale,
    duplicate rows that disagree) leave their track out and stop ``mer train``/``evaluate``."""

    kind: str  # missing_audio, malformed_row, out_of_range, clipped, duplicate, missing_file, unknown_word,
    #            bad_name, bad_audio, split_overlap, split_unknown_songs, ...
    message: str
    track_id: str | None = None
    path: str | None = None
    line: int | None = None
    blocking: bool = False


@dataclass
class ValidationReport:
    dataset: str
    root: Path
    n_tracks: int
    n_audio: int
    n_static: int
    n_dynamic: int
    source_scale: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out


TOL = 1e-6  # values this close outside a scale's edge are put on the edge, not reported

#: one parsed row: (key, file, line, value); the key is a track id or (track id, time in s)
Entry = tuple[Hashable, Path, int, Any]


@dataclass(frozen=True)
class LabelScale:
    """How a loader checks one file's labels: the declared scale, clip or refuse values
    outside it, and whether the user picks the scale (the folder's ``scale=`` option)."""

    name: str
    clip: bool = False
    option: bool = False


def guess_scale(values: np.ndarray, declared: str) -> str | None:
    """The known scale, other than ``declared``, that holds most of ``values`` (more than half,
    and more than ``declared`` does; the narrowest on a tie), or None."""
    def held(s: Scale) -> int:
        return int(np.sum((values >= s.low - TOL) & (values <= s.high + TOL)))
    best = max((s for s in SCALES.values() if s.name != declared), key=lambda s: (held(s), s.low - s.high))
    ok = 2 * held(best) > len(values) and held(best) > held(get_scale(declared))
    return best.name if ok else None


class ScaleCheck:
    """Range check of one file's label values; use as ``with ScaleCheck(...) as check:``.

    ``check(values, line, track_id, names=..., times=...)`` returns the values (clipped to
    the scale when the rule says so) or None when the row must be left out. The problems
    are written when the ``with`` block ends, once the whole file has been seen."""

    def __init__(self, path: Path, rule: LabelScale, problems: list[Problem]) -> None:
        self.path, self.rule, self.problems = path, rule, problems
        self.scale = get_scale(rule.name)
        self.seen: list[np.ndarray] = []
        self.bad: list[tuple[int, str | None, str]] = []  # (line, track id, what was wrong)
        self.n_out = self.n_clipped = 0

    def __call__(self, values: Sequence[float] | np.ndarray, line: int, track_id: str | None,
                 names: Sequence[str] = (), times: np.ndarray | None = None) -> np.ndarray | None:
        x = np.asarray(values, dtype=np.float64)
        self.seen.append(x.ravel())
        out = (x < self.scale.low - TOL) | (x > self.scale.high + TOL)
        if out.any():
            self.n_out += int(out.sum())
            if not self.rule.clip:
                self.bad.append((line, track_id, _describe(x, out, names, times)))
                return None
            self.n_clipped += int(out.sum())
        return np.clip(x, self.scale.low, self.scale.high)

    def __enter__(self) -> ScaleCheck:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            return
        s, hint = self.scale, self._hint()
        where = f"outside the {s.name} scale [{s.low:g}, {s.high:g}]"
        for line, track_id, what in self.bad:
            todo = hint or "correct the value, or pass --dataset-option clip=true to clip it to the scale"
            self.problems.append(Problem(
                "out_of_range", f"{self.path.name} line {line}: {what} {where}; {'track' if track_id else 'row'} "
                f"left out: {todo}", track_id, str(self.path), line, blocking=True))
        if self.n_clipped:
            self.problems.append(Problem("clipped", f"{self.path.name}: clipped {self.n_clipped} value(s) {where} to "
                                         f"its edges (clip=true){'; ' + hint if hint else ''}", path=str(self.path)))

    def _hint(self) -> str:
        """What to do when most values are off the declared scale ("" when they are not)."""
        if not self.seen or self.n_out <= 0.5 * sum(len(x) for x in self.seen):
            return ""
        values = np.concatenate(self.seen)
        guess = guess_scale(values, self.scale.name)
        if guess is None:
            return (f"most values (from {values.min():g} to {values.max():g}) fit no known scale "
                    f"({', '.join(SCALES)}); is this the right file?")
        if self.rule.option:
            return f"values look like the {guess} scale; pass --dataset-option scale={guess}"
        return f"values look like the {guess} scale, not {self.scale.name}; is this the right file (or release)?"


def _describe(x: np.ndarray, out: np.ndarray, names: Sequence[str], times: np.ndarray | None) -> str:
    """The out-of-range values of one row, e.g. ``valence 42`` or ``3 values (first 7 at 15.5 s)``."""
    idx = np.flatnonzero(out)
    if len(names) == len(x):
        return ", ".join(f"{names[int(i)]} {x[i]:g}" for i in idx)
    first = f"{x[idx[0]]:g}" + (f" at {times[idx[0]]:g} s" if times is not None else "")
    return f"value {first}" if len(idx) == 1 else f"{len(idx)} values (first {first})"


def unique(entries: Iterable[Entry], problems: list[Problem], keys_are_tracks: bool = True) -> dict[Any, Any]:
    """``{key: value}`` of parsed rows; every repeated key is a "duplicate" problem naming both
    lines. Rows that agree keep one; a key whose rows disagree is left out (blocking), and so
    is its track when the keys are track ids (not, say, lexicon words)."""
    first: dict[Any, tuple[Path, int, Any]] = {}
    conflicts: set[Any] = set()
    for key, path, line, value in entries:
        if key not in first:
            first[key] = (path, line, value)
            continue
        path0, line0, value0 = first[key]
        same = _same(value0, value)
        if not same:
            conflicts.add(key)
        track_id, name = (key[0], f"{key[0]!r} at {key[1]:g} s") if isinstance(key, tuple) else (key, repr(key))
        where = f"{path0.name} lines {line0} and {line}" if path0 == path else \
            f"{path0.name} line {line0} and {path.name} line {line}"
        what = "with the same values; kept one" if same else \
            f"with different values ({_short(value0)} vs {_short(value)}); left out: delete the wrong row"
        problems.append(Problem("duplicate", f"{where}: {name} listed twice {what}",
                                str(track_id) if keys_are_tracks else None, str(path), line, blocking=not same))
    return {key: v for key, (_, _, v) in first.items() if key not in conflicts}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


def _short(value: Any, width: int = 60) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v!r}" for k, v in value.items())
    elif isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, separator=" ", threshold=6)
    else:
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
