"""The dataset interface: an index of track ids, lazy tracks, and a ``validate()`` report.

Every loader returns labels on mer's canonical scale (valence and arousal in [-1, 1]) and
records the source scale in ``Dataset.source_scale``. Dynamic labels are on the 0.5 s grid
with explicit times in seconds (``times[i]`` is the centre of frame i; DEAM's
``sample_15000ms`` is t = 15.0); ``dynamic`` has shape (T, 2) in (valence, arousal) order.

Loaders parse annotation files once, on first use, into plain dicts (``_load_index``);
``validate()`` never raises on bad data: it lists what is missing or malformed so that the
user can fix it, while ``track()`` on a usable id always works.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DatasetError
from ..scales import get_scale, to_canonical


@dataclass
class Track:
    """One annotated piece of music. Absent labels are ``None``."""

    track_id: str
    audio_path: Path | None
    valence: float | None = None  # static, canonical [-1, 1]
    arousal: float | None = None
    valence_std: float | None = None  # spread across raters, in canonical units
    arousal_std: float | None = None
    times: np.ndarray | None = None  # (T,) seconds on the 0.5 s grid
    dynamic: np.ndarray | None = None  # (T, 2) valence, arousal, canonical
    quadrant: str | None = None  # "Q1".."Q4" where the dataset labels quadrants
    artist: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def static(self) -> np.ndarray | None:
        """(2,) array (valence, arousal), or None."""
        if self.valence is None or self.arousal is None:
            return None
        return np.array([self.valence, self.arousal], dtype=np.float32)

    def load_audio(self, sr: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
        from .. import audio

        if self.audio_path is None:
            raise DatasetError(f"track {self.track_id} has no audio file")
        return audio.load(self.audio_path, sr=sr, mono=mono)


@dataclass
class Problem:
    """One thing ``validate()`` found wrong."""

    kind: str  # missing_audio, missing_labels, malformed_row, missing_file, unknown_word, ...
    message: str
    track_id: str | None = None
    path: str | None = None


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


class Dataset:
    """Base class; subclasses set the class attributes and implement ``_load_index``.

    ``_load_index`` returns ``{track_id: Track}`` for every id that has labels, and appends
    to ``self._problems`` what it found wrong while parsing.
    """

    name: str = ""
    description: str = ""
    citation: str = ""
    license: str = ""
    download: str = ""
    layout: str = ""  # what the root folder must contain, shown in errors
    source_scale: str = "canonical"
    #: Releases whose track ids name the same songs share an id space (emoMusic's ids are DEAM's),
    #: so a model trained on one is known to have heard the other's clips with the same ids.
    id_space: str = ""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found; download {self.name} from "
                               f"{self.download} and pass its folder with --root ({self.layout})")
        self._index: dict[str, Track] | None = None
        self._problems: list[Problem] = []
        self._extra_audio: list[Path] = []

    # -- index -------------------------------------------------------------------------
    def _load_index(self) -> dict[str, Track]:
        raise NotImplementedError

    @property
    def index(self) -> dict[str, Track]:
        if self._index is None:
            self._index = self._load_index()
        return self._index

    @property
    def track_ids(self) -> list[str]:
        return list(self.index)

    def track(self, track_id: str | int) -> Track:
        key = str(track_id)
        if key not in self.index:
            raise DatasetError(f"{self.name}: no track {key!r} in {self.root}")
        return self.index[key]

    def tracks(self, with_audio: bool = True) -> Iterator[Track]:
        """Tracks in id order; by default only those whose audio file exists."""
        for t in self.index.values():
            if not with_audio or (t.audio_path is not None and t.audio_path.exists()):
                yield t

    def __len__(self) -> int:
        return len(self.index)

    # -- identity ------------------------------------------------------------------------
    @property
    def space(self) -> str:
        """The namespace of this dataset's track ids (see ``id_space``)."""
        return self.id_space or self.name

    def fingerprint(self, with_audio: bool = True) -> str:
        """SHA-1 (16 hex digits) of the track ids and their labels (static, quadrant, dynamic).

        Equal for the same release wherever it lives (another folder, a symlink, another
        machine); different when a track or a label changes. Checkpoints record it, so
        ``mer evaluate`` knows whether it is scoring a model on the data it was trained on."""
        h = hashlib.sha1(self.name.encode())
        for t in sorted(self.tracks(with_audio=with_audio), key=lambda t: t.track_id):
            static = "" if t.static is None else ",".join(f"{x:.6f}" for x in t.static)
            h.update(f"\0{t.track_id}|{static}|{t.quadrant or ''}|".encode())
            if t.dynamic is not None:
                h.update(np.ascontiguousarray(np.round(t.dynamic, 6), dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    # -- validation --------------------------------------------------------------------
    def validate(self) -> ValidationReport:
        """Report missing audio, audio without labels and malformed rows; never raises on data."""
        index = self.index
        problems = list(self._problems)
        n_audio = 0
        for t in index.values():
            if t.audio_path is not None and t.audio_path.exists():
                n_audio += 1
            else:
                problems.append(Problem("missing_audio", f"labels but no audio file {t.audio_path}", t.track_id,
                                        str(t.audio_path)))
        for extra in self._extra_audio:
            problems.append(Problem("unlabelled_audio", f"audio file without labels: {extra}", path=str(extra)))
        return ValidationReport(self.name, self.root, len(index), n_audio,
                                sum(t.static is not None for t in index.values()),
                                sum(t.dynamic is not None for t in index.values()),
                                self.source_scale, problems)

    def _require(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        if not p.exists():
            raise DatasetError(f"{p}: not found; {self.name} expects {self.layout} (download: {self.download})")
        return p

    def _note_unlabelled(self, audio_files: list[Path], labelled_ids: set[str]) -> None:
        """Remember audio files whose name (without extension) is not a labelled track id."""
        self._extra_audio = [f for f in audio_files if f.stem not in labelled_ids]


# -- shared parsing helpers ---------------------------------------------------------------

def clean(cell: str | None) -> str:
    """Strip spaces, tabs and quotes that the releases pad their cells with."""
    return (cell or "").strip().strip('"').strip()


def norm_header(name: str) -> str:
    """Header key: lower case, no spaces (fixes DEAM's ``valence_ max_mean`` typo)."""
    return clean(name).replace(" ", "").lower()


def read_rows(path: Path, encoding: str = "utf-8") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(normalised header, [(line number, cleaned cells)]) of a CSV file; empty lines skipped."""
    try:
        with open(path, newline="", encoding=encoding) as fh:
            reader = csv.reader(fh)
            header = [norm_header(h) for h in next(reader, [])]
            rows = [(i + 2, [clean(c) for c in row]) for i, row in enumerate(reader) if any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not {encoding} text ({exc.reason}); is this the original file?") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})") from None
    if not header:
        raise DatasetError(f"{path}: empty file; re-download the annotations")
    return header, rows


def column(header: list[str], path: Path, *names: str) -> int:
    """Index of the first of ``names`` present in ``header`` (normalised), or DatasetError."""
    for n in names:
        if norm_header(n) in header:
            return header.index(norm_header(n))
    raise DatasetError(f"{path}: no column {names[0]!r} (found: {', '.join(header)}); is this the right file?")


def canon(x: float | None, scale: str) -> float | None:
    """A label value on ``scale`` as a canonical float (None stays None)."""
    return None if x is None else float(to_canonical(x, scale))


def canon_std(x: float | None, scale: str) -> float | None:
    """A spread (standard deviation) on ``scale`` in canonical units (None stays None)."""
    return None if x is None else x / get_scale(scale).half_range


def parse_float(cell: str) -> float | None:
    try:
        x = float(cell)
    except ValueError:
        return None
    return x if np.isfinite(x) else None


def cell_float(cells: list[str], i: int) -> float | None:
    """The float in ``cells[i]``, or None when the row is too short or the cell is not a number."""
    return parse_float(cells[i]) if len(cells) > i else None


def read_long_dynamic(path: Path, columns: tuple[str, str, str, str], scale: str,
                      problems: list[Problem]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a long-format dynamic file, one row per (item, time): ``{id: (times (T,), (T, 2) canonical)}``.

    ``columns`` names the (id, time in s, valence, arousal) columns; values are on ``scale``.
    Rows are sorted by time per item; a row with a non-numeric value is reported and skipped.
    """
    header, rows = read_rows(path)
    ic, tc, vc, ac = (column(header, path, name) for name in columns)
    frames: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for line, c in rows:
        vals = [cell_float(c, i) for i in (tc, vc, ac)]
        if None in vals:
            problems.append(Problem("malformed_row", f"{path.name} line {line}: bad value", c[ic] or None, str(path)))
            continue
        frames[c[ic]].append(tuple(vals))  # type: ignore[arg-type]
    out = {}
    for key, fr in frames.items():
        arr = np.array(sorted(fr))
        out[key] = (arr[:, 0], np.asarray(to_canonical(arr[:, 1:3], scale)))
    return out


def read_wide_dynamic(path: Path, problems: list[Problem]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a DEAM/emoMusic wide dynamic file: ``song_id,sample_15000ms,...``.

    Returns ``{id: (times (T,), values (T,))}`` with values on the file's own scale. Rows may
    be of different lengths (full songs) and end in empty cells; an empty or non-numeric
    cell before the end of a row is reported as malformed and the row cut there.
    """
    header, rows = read_rows(path)
    if not header or header[0] not in ("song_id", "songid", "musicid"):
        raise DatasetError(f"{path}: first column should be song_id (found {header[:1]})")
    try:
        times = np.array([int(h.replace("sample_", "").replace("ms", "")) / 1000.0 for h in header[1:]])
    except ValueError:
        raise DatasetError(f"{path}: columns should be named sample_<ms>ms (found {header[1:3]}...)") from None
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for line, cells in rows:
        values = cells[1:]
        while values and values[-1] == "":
            values.pop()
        parsed = [parse_float(v) for v in values]
        if None in parsed:
            cut = parsed.index(None)
            problems.append(Problem("malformed_row", f"{path.name} line {line}: bad value {values[cut]!r} at "
                                    f"{times[cut]:.1f} s; row cut there", cells[0], str(path)))
            parsed = parsed[:cut]
        if len(parsed) > len(times):
            problems.append(Problem("malformed_row", f"{path.name} line {line}: more values than columns",
                                    cells[0], str(path)))
            parsed = parsed[: len(times)]
        if parsed:
            out[cells[0]] = (times[: len(parsed)].copy(), np.array(parsed, dtype=np.float64))
    return out


def merge_dynamic(valence: dict[str, tuple[np.ndarray, np.ndarray]], arousal: dict[str, tuple[np.ndarray, np.ndarray]],
                  track_id: str, problems: list[Problem]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Align one song's valence and arousal curves on their common frames -> (times, (T, 2))."""
    if track_id not in valence or track_id not in arousal:
        return None, None
    (tv, v), (_, a) = valence[track_id], arousal[track_id]
    n = min(len(v), len(a))
    if len(v) != len(a):
        problems.append(Problem("malformed_row", f"valence has {len(v)} frames but arousal {len(a)}; "
                                f"kept the first {n}", track_id))
    return tv[:n], np.stack([v[:n], a[:n]], axis=1)
