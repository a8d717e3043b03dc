"""AMG1608 (Chen, Yang, Wang, Chen 2015): 1,608 30 s clips, per-listener valence/arousal from 665 raters.

Release layout (the "AMG1608" archive from the authors; files are found anywhere below
``--root``, as the archive nests them in varying folders)::

    AMG1608.mat          song_label: (1608, 665, 2) ratings, per song x rater x (valence, arousal),
                         NaN where a rater did not rate the song; values on [-1, 1]
    1608_song_id.mat     mat_id2song_id: (1608, 1) the song id of each row of song_label
    amg1608_wav/<song_id>.wav      (.mp3 accepted too)

Where each fact comes from: the size, the 643 MTurk + 22 campus raters (665) from the
ICASSP 2015 paper; the [-1, 1] rating plane and the download page from J. S. Gomez-Canon's
survey of MER datasets (github.com/juansgomez87/datasets_emotion); the variable names ``song_label`` and
``mat_id2song_id``, the file names ``AMG1608.mat`` / ``1608_song_id.mat``, the (valence,
arousal) order of the last axis and the NaN gaps from public code that reads the release
(J. S. Gomez-Canon's active-learning experiments on AMG1608); the wav folder and its
song-id file names from public MATLAB code that renames ``amg1608_wav`` files by those ids.
The release also has ``amg1608_v2.xls`` (Excel) with the same means; mer reads the ``.mat``
files (scipy, in the ``train`` extra), which hold the individual ratings too.

Labels: the static mean of each song's raters (canonical scale already; ``valence_std``/
``arousal_std`` their spread), and the raters' individual labels through
:meth:`AMG1608.ratings` / :meth:`AMG1608.rating_matrix`. :meth:`AMG1608.annotation_ceiling`
is the split-half ceiling of the mean labels (:func:`mer.reliability.static_ceiling`).
Songs with no rating, or ratings off [-1, 1], are reported as for every loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, install_hint
from .base import Dataset, Track
from .problems import Problem, ScaleCheck

LABELS = "AMG1608.mat"
IDS = "1608_song_id.mat"


def _mat_fault(path: Path) -> str | None:
    """Why ``path`` is plainly not a MATLAB file, from its size and first bytes (None when it may be one).

    v5, v7 and v7.3 (HDF5) files open with a text header ``MATLAB ...``; v4 files have no
    magic but their first four bytes (a type code) hold a zero byte."""
    from ..audio.sniff import is_text

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "empty (0 bytes)"
    if head.startswith(b"MATLAB") or b"\0" in head[:4]:
        return None
    return "a text file, not a MATLAB file" if is_text(head) else "not a MATLAB file (no MATLAB header)"


def _loadmat(path: Path) -> dict[str, Any]:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DatasetError(f"{path}: reading MATLAB files needs scipy; {install_hint('scipy')}") from None
    todo = f"re-download the release from {AMG1608.download} ({AMG1608.layout})"
    fault = _mat_fault(path)
    if fault is not None:
        raise DatasetError(f"{path}: {fault}; {todo}")
    try:
        return loadmat(str(path))
    except NotImplementedError:  # a v7.3 (HDF5) file
        raise DatasetError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; save it again with "
                           f"MATLAB's save -v7, or {todo}") from None
    except Exception as exc:  # noqa: BLE001  scipy's parser fails on corrupt files with any error (IndexError...)
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{path}: not a MATLAB file scipy can read ({what}); {todo}") from None


class AMG1608(Dataset):
    name = "amg1608"
    description = "AMG1608 (2015): 1,608 x 30 s clips, valence/arousal per listener from 665 raters, mean labels"
    citation = ("Chen, Yang, Wang, Chen (2015). The AMG1608 dataset for music emotion recognition. IEEE ICASSP, "
                "pp. 693-697")
    license = "research use (30 s AllMusic previews); see the release page"
    download = "https://amg1608.blogspot.com/"
    layout = "AMG1608.mat, 1608_song_id.mat and amg1608_wav/<song_id>.wav"
    source_scale = "canonical"

    def __init__(self, root: str | os.PathLike, clip: bool | str = False) -> None:
        super().__init__(root, clip)
        self._ratings: np.ndarray | None = None  # (songs, raters, 2)
        self._row: dict[str, int] = {}

    def _find(self, name: str) -> Path:
        hits = sorted(self.root.rglob(name))
        if not hits:
            raise DatasetError(f"{self.root}: no {name} below it; {self.name} expects {self.layout} "
                               f"(download: {self.download})")
        return hits[0]

    def _load_index(self) -> dict[str, Track]:
        labels_path, ids_path = self._find(LABELS), self._find(IDS)
        mat = _loadmat(labels_path)
        if "song_label" not in mat:
            raise DatasetError(f"{labels_path}: no variable song_label (found: "
                               f"{', '.join(k for k in mat if not k.startswith('__'))}); is this the right file?")
        ratings = np.asarray(mat["song_label"], dtype=np.float64)
        ids_mat = _loadmat(ids_path)
        if "mat_id2song_id" not in ids_mat:
            raise DatasetError(f"{ids_path}: no variable mat_id2song_id; is this the right file?")
        ids = [_id(x) for x in np.asarray(ids_mat["mat_id2song_id"]).ravel()]
        if ratings.ndim != 3 or ratings.shape[2] != 2 or ratings.shape[0] != len(ids):
            raise DatasetError(f"{labels_path}: song_label has shape {ratings.shape}; expected (songs, raters, 2) "
                               f"with one row per id of {ids_path.name} ({len(ids)})")
        audio = {p.stem: p for ext in ("*.wav", "*.mp3") for p in sorted(self.root.rglob(ext)) if p.is_file()}
        index: dict[str, Track] = {}
        first: dict[str, int] = {}
        with ScaleCheck(labels_path, self._labels("canonical"), self._problems) as check:
            for row, sid in enumerate(ids):
                if sid in first:
                    self._problems.append(Problem("duplicate", f"{ids_path.name}: song {sid!r} on rows {first[sid] + 1} "
                                                  f"and {row + 1}; kept the first", sid, str(ids_path), row + 1))
                    continue
                first[sid] = row
                r = ratings[row]
                ok = np.isfinite(r).all(axis=1)
                if not ok.any():
                    self._problems.append(Problem("missing_labels", f"{labels_path.name}: song {sid!r} (row {row + 1}) "
                                                  "has no rating", sid, str(labels_path), row + 1))
                    continue
                checked = check(r[ok].ravel(), row + 1, sid)
                if checked is None:
                    continue
                r[ok] = checked.reshape(-1, 2)
                mean, sd = r[ok].mean(axis=0), r[ok].std(axis=0)
                index[sid] = Track(sid, audio.get(sid, self.root / "amg1608_wav" / f"{sid}.wav"),
                                   valence=float(mean[0]), arousal=float(mean[1]), valence_std=float(sd[0]),
                                   arousal_std=float(sd[1]), metadata={"raters": int(ok.sum())})
        self._ratings, self._row = ratings, first
        if len(ids) != 1608:
            self._notes.append(f"{len(ids)} songs in {ids_path.name}; the full release has 1,608")
        self._note_unlabelled(sorted(audio.values()), set(index))
        return index

    def rating_matrix(self) -> tuple[list[str], np.ndarray]:
        """(track ids, ratings (songs, raters, 2) in (valence, arousal), NaN where unrated) of the usable tracks."""
        ids = self.track_ids
        assert self._ratings is not None
        return ids, self._ratings[[self._row[i] for i in ids]]

    def ratings(self, track_id: str | int) -> dict[str, np.ndarray]:
        """One song's individual labels: ``{"rater": (R,) rater indices, "valence": (R,), "arousal": (R,)}``."""
        t = self.track(track_id)
        assert self._ratings is not None
        r = self._ratings[self._row[t.track_id]]
        ok = np.flatnonzero(np.isfinite(r).all(axis=1))
        return {"rater": ok, "valence": r[ok, 0], "arousal": r[ok, 1]}

    def annotation_ceiling(self) -> dict:
        """Per dimension, the split-half :class:`~mer.reliability.Ceiling` of the mean labels."""
        from ..reliability import static_ceiling

        _, r = self.rating_matrix()
        return {dim: static_ceiling(r[:, :, i], dim) for i, dim in enumerate(("valence", "arousal"))}


def _id(x: Any) -> str:
    """A song id from a MATLAB cell (numbers come back as floats, strings as 1-element arrays)."""
    while isinstance(x, np.ndarray):
        if x.size == 0:
            return ""
        x = x.ravel()[0]
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x).strip()
