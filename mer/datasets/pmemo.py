"""PMEmo2019 (Zhang, Meng, Li, Wu, Xu 2018): 794 pop choruses, static and 2 Hz dynamic labels.

Release layout (paths relative to ``--root``)::

    chorus/<musicId>.mp3
    annotations/static_annotations.csv    musicId, Arousal(mean), Valence(mean)       ([0, 1])
    annotations/dynamic_annotations.csv   musicId, frameTime, Arousal(mean), Valence(mean)
    metadata.csv                           optional: musicId, fileName, title, artist, ...

Labels are on [0, 1] and converted with ``2x - 1``. Dynamic frames start at 15.5 s. Values
off [0, 1] and ids (or id and frame time) listed twice are reported as
:mod:`mer.datasets.problems` describes.
"""

from __future__ import annotations

import numpy as np

from .base import Dataset, Track
from .problems import unique
from .tables import canon, read_info, read_long_dynamic, read_static


class PMEmo(Dataset):
    name = "pmemo"
    description = "PMEmo2019: 794 pop song choruses, static and 2 Hz dynamic valence/arousal in [0, 1]"
    citation = ("Zhang, Meng, Li, Wu, Xu (2018). The PMEmo dataset for music emotion recognition. ACM ICMR")
    license = "research use only (copyrighted pop choruses)"
    download = "https://github.com/HuiZhangDB/PMEmo (PMEmo2019.zip)"
    layout = "chorus/ and annotations/static_annotations.csv"
    source_scale = "0-1"

    def _load_index(self) -> dict[str, Track]:
        static = read_static([self._require("annotations", "static_annotations.csv")], self._problems,
                             self._labels("0-1"), key=("musicId",),
                             columns={"valence": ("Valence(mean)",), "arousal": ("Arousal(mean)",)})
        dynamic = self._dynamic()
        artists = self._artists()
        chorus = self.root / "chorus"
        index: dict[str, Track] = {}
        for key in sorted(set(static) | set(dynamic), key=lambda s: int(s) if s.isdigit() else 10**9):
            s = static.get(key, {})
            va, ar = s.get("valence"), s.get("arousal")
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
        return read_long_dynamic(path, ("musicId", "frameTime", "Valence(mean)", "Arousal(mean)"), self._labels("0-1"),
                                 self._problems)

    def _artists(self) -> dict[str, str]:
        path = self.root / "metadata.csv"
        if not path.exists():
            return {}
        entries = read_info(path, self._problems, ("musicId",), {"artist": ("artist",)})
        return {key: m["artist"] for key, m in unique(entries, self._problems).items()}
