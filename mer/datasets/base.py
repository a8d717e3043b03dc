"""The dataset interface: an index of track ids, lazy tracks, and a ``validate()`` report.

Every loader returns labels on mer's canonical scale (valence and arousal in [-1, 1]) and
records the source scale in ``Dataset.source_scale``. Dynamic labels are on the 0.5 s grid
with explicit times in seconds (``times[i]`` is the centre of frame i; DEAM's
``sample_15000ms`` is t = 15.0); ``dynamic`` has shape (T, 2) in (valence, arousal) order.

Loaders parse annotation files once, on first use, into plain dicts (``_load_index``);
``validate()`` never raises on bad data: it lists what is missing or malformed so that the
user can fix it, while ``track()`` on a usable id always works. Label values outside their
source scale and ids listed twice with different values leave their track out of the index
with a *blocking* problem (:meth:`Dataset.blocking_problems`), which stops training and
evaluation; ``clip=True`` clips off-scale values instead. The checks and the problem kinds
are in :mod:`mer.datasets.problems`, the CSV readers in :mod:`mer.datasets.tables`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DatasetError
from .problems import LabelScale, Problem, ValidationReport
from .tables import is_regular_file


@dataclass
class Track:
    """One annotated piece of music. Absent labels are ``None``.

    Attributes
    ----------
    track_id : str
        The release's own id.
    audio_path : Path or None
        The audio file (it may be missing: :meth:`Dataset.validate` reports it).
    valence, arousal : float or None
        Static labels on the canonical scale [-1, 1].
    valence_std, arousal_std : float or None
        Spread across raters, in canonical units.
    times : np.ndarray or None
        ``(T,)`` seconds of the dynamic labels, on the 0.5 s grid (DEAM's first is 15.0).
    dynamic : np.ndarray or None
        ``(T, 2)`` (valence, arousal) per time, canonical scale.
    quadrant : str or None
        ``"Q1"``..``"Q4"`` where the dataset labels quadrants (4Q, MERGE, RAVDESS).
    artist : str or None
        Used to keep an artist on one side of every split.
    metadata : dict
        Whatever else the release says about the track.
    """

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


#: every loader, by name: a :class:`Dataset` subclass that sets ``name`` registers itself when
#: its module is imported (mirdata's one-file rule; :mod:`mer.datasets` imports every module of
#: the package), so a new loader is one file plus its test
REGISTRY: dict[str, type["Dataset"]] = {}


class Dataset:
    """Base class; subclasses set the class attributes and implement ``_load_index``.

    ``_load_index`` returns ``{track_id: Track}`` for every id that has labels, and appends
    to ``self._problems`` what it found wrong while parsing; tracks named by a blocking
    problem are then left out of the index. ``clip=True`` clips label values outside the
    source scale to its edges (reported as "clipped") instead of leaving their tracks out.
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
    #: whether the user declares the label scale (``scale=``), so that hints can say to pass it
    scale_option: bool = False
    #: the release's own published splits, usable as ``--split NAME`` (see :meth:`named_split`)
    named_splits: tuple[str, ...] = ()
    #: a release ``mer datasets list`` shows (False: a composite of others, such as ``union``)
    listed: bool = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.name:
            REGISTRY[cls.name] = cls

    @classmethod
    def check_root(cls, root: str | os.PathLike) -> Path:
        """``root`` as a Path, or the one-line DatasetError that says where to download the
        release and what its folder must hold (also what ``mer train --root WRONG`` says)."""
        path = Path(root)
        if not path.is_dir():
            raise DatasetError(f"{path}: dataset folder not found; download {cls.name} from "
                               f"{cls.download} and pass its folder with --root ({cls.layout})")
        return path

    def __init__(self, root: str | os.PathLike, clip: bool | str = False) -> None:
        self.root = self.check_root(root)
        self.clip = _flag(clip, "clip")
        self._index: dict[str, Track] | None = None
        self._problems: list[Problem] = []
        self._refused: dict[str, Problem] = {}
        self._extra_audio: list[Path] = []
        self._notes: list[str] = []

    # -- index -------------------------------------------------------------------------
    def _load_index(self) -> dict[str, Track]:
        raise NotImplementedError

    @property
    def index(self) -> dict[str, Track]:
        """``{track_id: Track}`` of the usable tracks (those without a blocking problem)."""
        if self._index is None:
            self._problems = []
            index = self._load_index()
            self._refused = {}
            for p in self._problems:
                if p.blocking and p.track_id:
                    self._refused.setdefault(p.track_id, p)
            self._index = {k: t for k, t in index.items() if k not in self._refused}
        return self._index

    def _labels(self, scale: str) -> LabelScale:
        """How to check label values on ``scale`` (clip or refuse; whether to hint ``scale=``)."""
        return LabelScale(scale, self.clip, self.scale_option)

    @property
    def track_ids(self) -> list[str]:
        return list(self.index)

    def track(self, track_id: str | int) -> Track:
        key = str(track_id)
        if key not in self.index:
            if key in self._refused:
                raise DatasetError(f"{self.name}: track {key!r} was left out: {self._refused[key].message}")
            raise DatasetError(f"{self.name}: no track {key!r} in {self.root}")
        return self.index[key]

    def tracks(self, with_audio: bool = True) -> Iterator[Track]:
        """Tracks in id order; by default only those whose audio file exists (a regular file)."""
        for t in self.index.values():
            if not with_audio or (t.audio_path is not None and is_regular_file(t.audio_path)):
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
        """Report what the parsing found (malformed rows, values off the scale, duplicates...),
        missing audio and audio without labels; never raises on bad rows or audio files."""
        index = self.index
        problems = list(self._problems)
        n_audio = 0
        for t in index.values():
            if t.audio_path is not None and is_regular_file(t.audio_path):
                n_audio += 1
            elif t.audio_path is not None and _exists(t.audio_path):
                problems.append(Problem("missing_audio", f"{t.audio_path} is not a regular file (a folder, pipe or "
                                        "device); put the audio file there", t.track_id, str(t.audio_path)))
            else:
                problems.append(Problem("missing_audio", f"labels but no audio file {t.audio_path}", t.track_id,
                                        str(t.audio_path)))
        for extra in self._extra_audio:
            problems.append(Problem("unlabelled_audio", f"audio file without labels: {extra}", path=str(extra)))
        return ValidationReport(self.name, self.root, len(index), n_audio,
                                sum(t.static is not None for t in index.values()),
                                sum(t.dynamic is not None for t in index.values()),
                                self.source_scale, problems)

    def blocking_problems(self) -> list[Problem]:
        """The problems that must stop ``mer train`` and ``mer evaluate`` (empty when none):
        label values outside the source scale ("out_of_range", unless ``clip=True``) and ids
        listed twice with different values ("duplicate" with ``blocking=True``). Their tracks
        are already left out of the index, so training would quietly run on the rest; the
        messages name the file, the line and the fix. Parses the annotations (no audio check)."""
        self.index  # noqa: B018  (parses the annotations once)
        return [p for p in self._problems if p.blocking]

    def notes(self) -> list[str]:
        """What the loader left out or assumed by design (not problems), for ``mer datasets validate``."""
        self.index  # noqa: B018
        return list(self._notes)

    def named_split(self, name: str) -> Any:
        """The published split ``name`` (one of ``named_splits``) as a :class:`~mer.datasets.splits.Split`."""
        raise DatasetError(f"{self.name} has no published split {name!r}"
                           + (f"; choose one of {', '.join(self.named_splits)}" if self.named_splits else ""))

    def _require(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        if not p.exists():
            raise DatasetError(f"{p}: not found; {self.name} expects {self.layout} (download: {self.download})")
        return p

    def _note_unlabelled(self, audio_files: list[Path], labelled_ids: set[str]) -> None:
        """Remember audio files whose name (without extension) is not a labelled track id."""
        self._extra_audio = [f for f in audio_files if f.stem not in labelled_ids]


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _flag(value: bool | str | int, name: str) -> bool:
    """A yes/no option given as a bool or as text (``--dataset-option clip=true``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise DatasetError(f"{name}={value!r}: write {name}=true or {name}=false")
