"""Bring your own music: a folder of audio files and a CSV of labels.

``labels.csv`` (the default name) has one row per file::

    path,valence,arousal[,artist][,id]
    rock/song1.mp3,6.5,7.0,Some Band

``path`` is relative to the folder (or absolute); ``valence``/``arousal`` are on the scale
declared with ``scale=`` ("1-9", "0-1" or "canonical"). An optional dynamic CSV in long
format (``path,time,valence,arousal``, time in seconds on the 0.5 s grid, same scale) adds
2 Hz curves. Column names can be changed with the ``*_col`` arguments.

Values off the declared scale leave their file out (the report says which scale they look
like; ``clip=true`` clips them instead), and a file listed twice with different labels is
left out (see :mod:`mer.datasets.problems`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..scales import get_scale
from .base import Dataset, Track
from .problems import Entry, Problem, ScaleCheck, unique
from .tables import canon, column, malformed, optional_column, parse_floats, read_long_dynamic, read_table


class FolderDataset(Dataset):
    name = "folder"
    description = "your own audio folder with a labels CSV (path, valence, arousal[, artist]) on a declared scale"
    citation = "-"
    license = "yours"
    download = "(your own files)"
    layout = "labels.csv with columns path, valence, arousal"
    scale_option = True

    def __init__(self, root: str | os.PathLike, labels: str = "labels.csv", scale: str = "canonical",
                 dynamic: str | None = None, path_col: str = "path", valence_col: str = "valence",
                 arousal_col: str = "arousal", artist_col: str = "artist", clip: bool | str = False) -> None:
        super().__init__(root, clip)
        self.id_space = f"folder:{self.root.resolve()}"  # ids are paths inside this folder
        self.labels, self.dynamic_csv = labels, dynamic
        self.source_scale = get_scale(scale).name
        self.cols = (path_col, valence_col, arousal_col, artist_col)

    def _resolve(self, cell: str) -> Path:
        p = Path(cell)
        return p if p.is_absolute() else self.root / p

    def _load_index(self) -> dict[str, Track]:
        path = self._require(self.labels)
        header, rows = read_table(path, self._problems)
        pc, vc, ac = (column(header, path, n) for n in self.cols[:3])
        artist, ident = optional_column(header, self.cols[3]), optional_column(header, "id")
        entries: list[Entry] = []
        with ScaleCheck(path, self._labels(self.source_scale), self._problems) as check:
            for line, c in rows:
                key = c[ident] if ident is not None and c[ident] else c[pc]
                values = parse_floats([c[vc], c[ac]])
                if not c[pc] or values is None:
                    self._problems.append(malformed(path, line, f"need a path and numeric valence and arousal, "
                                                                f"got {c!r}"))
                    continue
                va = check(values, line, key, ("valence", "arousal"))
                if va is not None:
                    entries.append((key, path, line, (c[pc], float(va[0]), float(va[1]),
                                                      c[artist] if artist is not None else "")))
        labels = unique(entries, self._problems)
        dyn_problems: list[Problem] = []
        dynamic = self._dynamic(dyn_problems)
        key_of = {file: key for key, (file, *_) in labels.items()}
        for p in dyn_problems:  # the dynamic file names files; the index may use the id column
            p.track_id = key_of.get(p.track_id, p.track_id) if p.track_id else None
            self._problems.append(p)
        index: dict[str, Track] = {}
        for key, (file, v, a, art) in labels.items():
            times, dyn = dynamic.get(file, (None, None))
            index[key] = Track(key, self._resolve(file), valence=canon(v, self.source_scale),
                               arousal=canon(a, self.source_scale), times=times, dynamic=dyn, artist=art or None)
        return index

    def _dynamic(self, problems: list[Problem]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not self.dynamic_csv:
            return {}
        return read_long_dynamic(self._require(self.dynamic_csv), (self.cols[0], "time", self.cols[1], self.cols[2]),
                                 self._labels(self.source_scale), problems)
