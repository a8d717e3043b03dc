"""PMEmo2019 (Zhang, Meng, Li, Wu, Xu 2018): 794 pop choruses, static and 2 Hz dynamic labels.

Release layout (paths relative to ``--root``)::

    chorus/<musicId>.mp3
    annotations/static_annotations.csv    musicId, Arousal(mean), Valence(mean)       ([0, 1])
    annotations/dynamic_annotations.csv   musicId, frameTime, Arousal(mean), Valence(mean)
    metadata.csv                           optional: musicId, fileName, title, artist, ...

Labels are on [0, 1] and converted with ``2x - 1``. Dynamic frames start at 15.5 s.
"""

from __future__ import annotations

import numpy as np

from .base import Dataset, Problem, Track, canon, cell_float, column, read_long_dynamic, read_rows


class PMEmo(Dataset):
    name = "pmemo"
    description = "PMEmo2019: 794 pop song choruses, static and 2 Hz dynamic valence/arousal in [0, 1]"
    citation = ("Zhang, Meng, Li, Wu, Xu (2018). The PMEmo dataset for music emotion recognition. ACM ICMR")
    license = "research use only (copyrighted pop choruses)"
    download = "https://github.com/HuiZhangDB/PMEmo (PMEmo2019.zip)"
    layout = "chorus/ and annotations/static_annotations.csv"
    source_scale = "0-1"

    def _load_index(self) -> dict[str, Track]:
        static_path = self._require("annotations", "static_annotations.csv")
        header, rows = read_rows(static_path)
        sid, a, v = (column(header, static_path, *n) for n in (("musicId",), ("Arousal(mean)",), ("Valence(mean)",)))
        static: dict[str, tuple[float, float]] = {}
        for line, c in rows:
            va, ar = cell_float(c, v), cell_float(c, a)
            if va is None or ar is None:
                self._problems.append(Problem("malformed_row", f"{static_path.name} line {line}: bad value", c[sid],
                                              str(static_path)))
                continue
            static[c[sid]] = (va, ar)
        dynamic = self._dynamic()
        artists = self._artists()
        chorus = self.root / "chorus"
        index: dict[str, Track] = {}
        for key in sorted(set(static) | set(dynamic), key=lambda s: int(s) if s.isdigit() else 10**9):
            va, ar = static.get(key, (None, None))
            times, dyn = dynamic.get(key, (None, None))
            index[key] = Track(key, chorus / f"{key}.mp3",
                               valence=canon(va, "0-1"), arousal=canon(ar, "0-1"),
                               times=times, dynamic=dyn, artist=artists.get(key))
        if chorus.is_dir():
            self._note_unlabelled(sorted(chorus.glob("*.mp3")), set(index))
        return index

    def _dynamic(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        path = self.root / "annotations" / "dynamic_annotations.csv"
        if not path.exists():
            return {}
        return read_long_dynamic(path, ("musicId", "frameTime", "Valence(mean)", "Arousal(mean)"), "0-1",
                                 self._problems)

    def _artists(self) -> dict[str, str]:
        path = self.root / "metadata.csv"
        if not path.exists():
            return {}
        header, rows = read_rows(path, encoding="latin-1")
        sid, art = column(header, path, "musicId"), column(header, path, "artist")
        return {c[sid]: c[art] for _, c in rows if len(c) > max(sid, art)}
