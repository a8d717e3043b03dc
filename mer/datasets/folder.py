"""Bring your own music: a folder of audio files and a CSV of labels.

``labels.csv`` (the default name) has one row per file::

    path,valence,arousal[,artist][,id]
    rock/song1.mp3,6.5,7.0,Some Band

``path`` is relative to the folder (or absolute); ``valence``/``arousal`` are on the scale
declared with ``scale=`` ("1-9", "0-1" or "canonical"). An optional dynamic CSV in long
format (``path,time,valence,arousal``, time in seconds on the 0.5 s grid, same scale) adds
2 Hz curves. Column names can be changed with the ``*_col`` arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..scales import get_scale
from .base import Dataset, Problem, Track, canon, cell_float, column, read_long_dynamic, read_rows


class FolderDataset(Dataset):
    name = "folder"
    description = "your own audio folder with a labels CSV (path, valence, arousal[, artist]) on a declared scale"
    citation = "-"
    license = "yours"
    download = "(your own files)"
    layout = "labels.csv with columns path, valence, arousal"

    def __init__(self, root: str | os.PathLike, labels: str = "labels.csv", scale: str = "canonical",
                 dynamic: str | None = None, path_col: str = "path", valence_col: str = "valence",
                 arousal_col: str = "arousal", artist_col: str = "artist") -> None:
        super().__init__(root)
        self.id_space = f"folder:{self.root.resolve()}"  # ids are paths inside this folder
        self.labels, self.dynamic_csv = labels, dynamic
        self.source_scale = get_scale(scale).name
        self.cols = (path_col, valence_col, arousal_col, artist_col)

    def _resolve(self, cell: str) -> Path:
        p = Path(cell)
        return p if p.is_absolute() else self.root / p

    def _load_index(self) -> dict[str, Track]:
        path = self._require(self.labels)
        header, rows = read_rows(path)
        pc, vc, ac = (column(header, path, n) for n in self.cols[:3])
        artist = header.index(self.cols[3].lower()) if self.cols[3].lower() in header else None
        ident = header.index("id") if "id" in header else None
        dynamic = self._dynamic()
        index: dict[str, Track] = {}
        for line, c in rows:
            v, a = cell_float(c, vc), cell_float(c, ac)
            if not c[pc] or v is None or a is None:
                self._problems.append(Problem("malformed_row", f"{path.name} line {line}: need a path and numeric "
                                              f"valence and arousal, got {c!r}", path=str(path)))
                continue
            key = c[ident] if ident is not None and len(c) > ident and c[ident] else c[pc]
            if key in index:
                self._problems.append(Problem("malformed_row", f"{path.name} line {line}: duplicate entry {key!r}",
                                              key, str(path)))
                continue
            times, dyn = dynamic.get(c[pc], (None, None))
            index[key] = Track(key, self._resolve(c[pc]), valence=canon(v, self.source_scale),
                               arousal=canon(a, self.source_scale), times=times, dynamic=dyn,
                               artist=(c[artist] or None) if artist is not None and len(c) > artist else None)
        return index

    def _dynamic(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not self.dynamic_csv:
            return {}
        return read_long_dynamic(self._require(self.dynamic_csv), (self.cols[0], "time", self.cols[1], self.cols[2]),
                                 self.source_scale, self._problems)
