"""DEAM (MediaEval Database for Emotional Analysis in Music; Aljanaki, Yang, Soleymani 2017).

Official layout, as unpacked from the release (paths relative to ``--root``)::

    MEMD_audio/<song_id>.mp3                      1-2000: 45 s excerpts; 2001-2058: full songs
    annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv      song_id, valence_mean, valence_std, ...
        static_annotations_averaged_songs_2000_2058.csv   (+ max/min columns, header typo kept)
    annotations/annotations averaged per song/dynamic (per second annotations)/
        arousal.csv, valence.csv                  song_id, sample_15000ms, ... ([-1, 1], ragged rows)
    annotations/annotations per each rater/dynamic (per second annotations)/{arousal,valence}/<id>.csv
        optional: one row per rater (first column the worker id), same sample_<ms>ms columns
    metadata/*.csv                                optional: artist per song id (for grouped splits)

Static labels are on 1-9 (converted with ``(x - 5) / 4``, std with ``/ 4``); dynamic labels
are already on [-1, 1]. Values are padded with spaces in the release; they are stripped here.
Values off these scales and song ids listed twice (in one file or across the two static
files) are reported, and leave the song out, as :mod:`mer.datasets.problems` describes.
"""

from __future__ import annotations


import numpy as np

from ..errors import DatasetError
from .base import Dataset, Track
from .problems import Entry, Problem, unique
from .tables import canon, canon_std, merge_dynamic, parse_float, read_info, read_rows, read_static, read_wide_dynamic

AVERAGED = ("annotations", "annotations averaged per song")
STATIC_FILES = ("static_annotations_averaged_songs_1_2000.csv", "static_annotations_averaged_songs_2000_2058.csv")
DYNAMIC_DIR = "dynamic (per second annotations)"
RATER_DIR = ("annotations", "annotations per each rater", DYNAMIC_DIR)


class DEAM(Dataset):
    name = "deam"
    description = "DEAM: 1,802 songs (45 s excerpts + 58 full songs), static 1-9 and 2 Hz dynamic valence/arousal"
    citation = ("Aljanaki, Yang, Soleymani (2017). Developing a benchmark for emotional analysis of music. "
                "PLOS ONE 12(3): e0173392")
    license = "annotations: CC BY-NC-SA; audio: the licences of the Free Music Archive, Jamendo and MedleyDB tracks"
    download = "https://cvml.unige.ch/databases/DEAM/ (or the Kaggle mirror 'deam-mediaeval-dataset-emotional-analysis-in-music')"
    layout = "MEMD_audio/ and annotations/annotations averaged per song/"
    source_scale = "1-9"

    def _load_index(self) -> dict[str, Track]:
        avg = self._require(*AVERAGED)
        found = [avg / "song_level" / f for f in STATIC_FILES if (avg / "song_level" / f).exists()]
        static = read_static(found, self._problems, self._labels("1-9"))
        dyn_dir = avg / DYNAMIC_DIR
        curves = self._labels("canonical")
        valence = read_wide_dynamic(dyn_dir / "valence.csv", self._problems, curves) \
            if (dyn_dir / "valence.csv").exists() else {}
        arousal = read_wide_dynamic(dyn_dir / "arousal.csv", self._problems, curves) \
            if (dyn_dir / "arousal.csv").exists() else {}
        if not found and not valence:
            self._require(*AVERAGED, "song_level", STATIC_FILES[0])
        artists = self._artists()
        audio_dir = self.root / "MEMD_audio"
        ids = sorted(set(static) | set(valence) | set(arousal), key=_id_key)
        index: dict[str, Track] = {}
        for sid in ids:
            s = static.get(sid, {})
            times, dyn = merge_dynamic(valence, arousal, sid, self._problems)
            index[sid] = Track(
                sid, audio_dir / f"{sid}.mp3",
                valence=canon(s.get("valence"), "1-9"), arousal=canon(s.get("arousal"), "1-9"),
                valence_std=canon_std(s.get("valence_std"), "1-9"), arousal_std=canon_std(s.get("arousal_std"), "1-9"),
                times=times, dynamic=dyn, artist=artists.get(sid),
                metadata={"full_song": _id_key(sid) > 2000})
        if audio_dir.is_dir():
            self._note_unlabelled(sorted(audio_dir.glob("*.mp3")), set(index))
        return index

    def _artists(self) -> dict[str, str]:
        entries: list[Entry] = []
        for f in sorted((self.root / "metadata").glob("*.csv")) if (self.root / "metadata").is_dir() else []:
            try:
                entries += read_info(f, self._problems, ("song_id", "id", "songid"), {"artist": ("artist",)})
            except DatasetError as exc:  # metadata is optional: note and go on
                self._problems.append(Problem("malformed_file", f"{f.name}: {exc}", path=str(f)))
        return {sid: m["artist"] for sid, m in unique(entries, self._problems).items() if m["artist"]}

    def rater_curves(self, track_id: str) -> dict[str, np.ndarray] | None:
        """Per-rater dynamic curves ``{"valence": (R, T), "arousal": (R, T)}``, or None if absent."""
        out = {}
        for dim in ("valence", "arousal"):
            f = self.root.joinpath(*RATER_DIR, dim, f"{track_id}.csv")
            if not f.exists():
                return None
            header, rows = read_rows(f)
            curves = [[parse_float(c) for c in cells[1:]] for _, cells in rows]
            n = min((next((i for i, x in enumerate(c) if x is None), len(c)) for c in curves), default=0)
            if n == 0:
                return None
            out[dim] = np.array([c[:n] for c in curves], dtype=np.float64)
        n = min(out["valence"].shape[1], out["arousal"].shape[1])
        return {k: v[:, :n] for k, v in out.items()}

    def annotation_ceiling(self) -> dict:
        """Per dimension, the :class:`~mer.reliability.Ceiling` of the averaged dynamic labels,
        from the per-rater files (songs without them are left out; ``n_songs`` says how many)."""
        from ..reliability import dynamic_ceiling

        curves = [c for c in (self.rater_curves(t) for t in self.track_ids) if c is not None]
        return {dim: dynamic_ceiling([c[dim] for c in curves], dim) for dim in ("valence", "arousal")}


def _id_key(sid: str) -> int:
    return int(sid) if sid.isdigit() else 10**9
