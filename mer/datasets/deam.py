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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import (Dataset, Problem, Track, canon, canon_std, cell_float, column, merge_dynamic, norm_header,
                   parse_float, read_rows, read_wide_dynamic)

AVERAGED = ("annotations", "annotations averaged per song")
STATIC_FILES = ("static_annotations_averaged_songs_1_2000.csv", "static_annotations_averaged_songs_2000_2058.csv")
DYNAMIC_DIR = "dynamic (per second annotations)"
RATER_DIR = ("annotations", "annotations per each rater", DYNAMIC_DIR)


def read_static_1_9(path: Path, problems: list[Problem]) -> dict[str, dict[str, float]]:
    """Parse a DEAM/emoMusic static file (1-9 scale): ``{id: {valence, arousal, valence_std, arousal_std}}``."""
    header, rows = read_rows(path)
    sid = column(header, path, "song_id", "musicId")
    cols = {key: column(header, path, *names) for key, names in {
        "valence": ("valence_mean", "mean_valence"), "arousal": ("arousal_mean", "mean_arousal")}.items()}
    for key, names in {"valence_std": ("valence_std", "std_valence"), "arousal_std": ("arousal_std", "std_arousal")}.items():
        if any(norm_header(n) in header for n in names):  # the std columns are optional
            cols[key] = column(header, path, *names)
    out: dict[str, dict[str, float]] = {}
    for line, cells in rows:
        vals = {k: cell_float(cells, i) for k, i in cols.items()}
        if vals["valence"] is None or vals["arousal"] is None or not cells[sid]:
            problems.append(Problem("malformed_row", f"{path.name} line {line}: missing or non-numeric value",
                                    cells[sid] if cells else None, str(path)))
            continue
        out[cells[sid]] = vals
    return out


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
        static: dict[str, dict[str, float]] = {}
        found = [avg / "song_level" / f for f in STATIC_FILES if (avg / "song_level" / f).exists()]
        for f in found:
            static.update(read_static_1_9(f, self._problems))
        dyn_dir = avg / DYNAMIC_DIR
        valence = read_wide_dynamic(dyn_dir / "valence.csv", self._problems) if (dyn_dir / "valence.csv").exists() else {}
        arousal = read_wide_dynamic(dyn_dir / "arousal.csv", self._problems) if (dyn_dir / "arousal.csv").exists() else {}
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
        out: dict[str, str] = {}
        for f in sorted((self.root / "metadata").glob("*.csv")) if (self.root / "metadata").is_dir() else []:
            try:
                header, rows = read_rows(f, encoding="latin-1")
                sid, art = column(header, f, "song_id", "id", "songid"), column(header, f, "artist", "Artist")
            except DatasetError as exc:  # metadata is optional: note and go on
                self._problems.append(Problem("malformed_file", f"{f.name}: {exc}", path=str(f)))
                continue
            out.update({c[sid]: c[art] for _, c in rows if len(c) > max(sid, art) and c[art]})
        return out

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
