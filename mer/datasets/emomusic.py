"""emoMusic: "1000 songs for emotional analysis of music" (Soleymani et al. 2013), 744 songs.

Release layout (paths relative to ``--root``)::

    clips_45seconds/<song_id>.mp3
    annotations/static_annotations.csv        song_id, mean_arousal, std_arousal, mean_valence, std_valence (1-9)
    annotations/arousal_cont_average.csv      song_id, sample_15000ms ... sample_45000ms ([-1, 1], 2 Hz)
    annotations/valence_cont_average.csv
    annotations/songs_info.csv                artist, title, genre, "Mediaeval 2013 set" (development/evaluation)

Note the column order: arousal comes before valence in the static file. These songs are
DEAM's songs 2-1000; for them DEAM's and emoMusic's static valence and arousal are swapped
(see :mod:`mer.datasets.swap`).
"""

from __future__ import annotations

from .base import Dataset, Track
from .problems import Problem, unique
from .tables import canon, canon_std, merge_dynamic, read_info, read_static, read_wide_dynamic


class EmoMusic(Dataset):
    name = "emomusic"
    id_space = "deam"  # the 2013 songs keep their DEAM song ids
    description = "emoMusic (MediaEval 2013): 744 x 45 s clips, static 1-9 and 2 Hz dynamic valence/arousal"
    citation = ("Soleymani, Caro, Schmidt, Sha, Yang (2013). 1000 songs for emotional analysis of music. "
                "ACM CrowdMM workshop")
    license = "clips under Creative Commons licences (mostly CC BY 3.0; see each file's ID3 tags)"
    download = "https://cvml.unige.ch/databases/emoMusic/"
    layout = "clips_45seconds/ and annotations/"
    source_scale = "1-9"

    def _load_index(self) -> dict[str, Track]:
        ann = self._require("annotations")
        static = read_static([self._require("annotations", "static_annotations.csv")], self._problems,
                             self._labels("1-9"))
        curves = self._labels("canonical")
        valence = read_wide_dynamic(ann / "valence_cont_average.csv", self._problems, curves) \
            if (ann / "valence_cont_average.csv").exists() else {}
        arousal = read_wide_dynamic(ann / "arousal_cont_average.csv", self._problems, curves) \
            if (ann / "arousal_cont_average.csv").exists() else {}
        info = self._songs_info()
        clips = self.root / "clips_45seconds"
        index: dict[str, Track] = {}
        for sid in sorted(set(static) | set(valence), key=lambda s: int(s) if s.isdigit() else 10**9):
            s = static.get(sid, {})
            times, dyn = merge_dynamic(valence, arousal, sid, self._problems)
            meta = info.get(sid, {})
            index[sid] = Track(
                sid, clips / f"{sid}.mp3",
                valence=canon(s.get("valence"), "1-9"), arousal=canon(s.get("arousal"), "1-9"),
                valence_std=canon_std(s.get("valence_std"), "1-9"), arousal_std=canon_std(s.get("arousal_std"), "1-9"),
                times=times, dynamic=dyn, artist=meta.pop("artist", None), metadata=meta)
        if clips.is_dir():
            self._note_unlabelled(sorted(clips.glob("*.mp3")), set(index))
        return index

    def _songs_info(self) -> dict[str, dict[str, str]]:
        path = self.root / "annotations" / "songs_info.csv"
        if not path.exists():
            self._problems.append(Problem("missing_file", f"{path} not found: no artists (splits fall back to songs) "
                                          "and no MediaEval 2013 split", path=str(path)))
            return {}
        entries = read_info(path, self._problems, ("song_id",), {"artist": ("Artist",), "title": ("Song title",),
                                                                  "genre": ("Genre",),
                                                                  "mediaeval2013_set": ("Mediaeval 2013 set",)})
        return unique(entries, self._problems)
