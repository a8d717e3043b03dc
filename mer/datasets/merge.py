"""MERGE (Louro, Redinho, Santos, Malheiro, Panda, Paiva 2024): the bimodal successor of 4Q.

The release (Zenodo record 13939205) is six zips, one folder each: ``MERGE_Audio_Complete``
(3,554 clips), ``MERGE_Audio_Balanced`` (3,232), ``MERGE_Lyrics_{Complete,Balanced}`` and
``MERGE_Bimodal_{Complete,Balanced}``. ``--root`` is the folder they were unpacked into, or
one ``MERGE_Audio_*`` folder itself. Inside ``MERGE_Audio_Complete`` (``complete`` below
becomes ``balanced`` for the other subset)::

    Q1/<Song>.mp3 ... Q4/<Song>.mp3                    ~30 s AllMusic previews, ids like A001
    merge_audio_complete_metadata.csv                  Song, Quadrant, AllMusic Id, Artist, Title, ...
    merge_audio_complete_av_values.csv                 Song, Arousal, Valence  (both in [0, 1])
    tvt_dataframes/tvt_70_15_15/tvt_70_15_15_{train,validate,test}_audio_complete.csv   Song, Quadrant
    tvt_dataframes/tvt_40_30_30/tvt_40_30_30_{train,validate,test}_audio_complete.csv

Where each fact comes from: the subset names and the 3,554 clips of the complete audio set
from the paper (arXiv 2407.06060) and the Zenodo record; the 3,232 of the balanced one, the
quadrant folders, the file and column names (``Song``,
``Quadrant``, ``Arousal``, ``Valence``, the ``tvt_dataframes`` names, ``Audio_Song`` /
``Lyric_Song`` in the bimodal metadata) from public code that reads the release (MERGE
loaders and ETL scripts on GitHub), which also treat the AV values as [0, 1] (converted here
with ``2x - 1``; values off [0, 1] are reported, as for every loader).

Labels: the quadrant of every clip (ground truth) and, where ``*_av_values.csv`` is present,
its valence/arousal. The published train/validate/test splits are named splits
(``--split tvt_70_15_15`` or ``tvt_40_30_30``): one fold whose test part is the ``test`` file and
whose early-stopping set is the ``validate`` file. Lyrics are indexed, not required: where a
``MERGE_Bimodal_*`` metadata file pairs an audio id with a lyrics id and the lyrics ``.txt``
exists (``MERGE_Lyrics_*/Q*/`` or ``MERGE_Bimodal_*/lyrics/Q*/``), the track's
``metadata["lyrics"]`` is its path. MERGE lists no artist ids beyond the ``Artist`` name,
which mer's k-fold splits group by.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from .base import Dataset, Track
from .problems import Entry, Problem, ValidationReport, unique
from .tables import canon, column, malformed, optional_column, read_static, read_table

SUBSETS = ("complete", "balanced")
SPLITS = ("tvt_70_15_15", "tvt_40_30_30")
PARTS = ("train", "validate", "test")
QUADS = ("Q1", "Q2", "Q3", "Q4")


def _table(path: Path, problems: list[Problem]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """UTF-8 first (the metadata holds artist names), Latin-1 when the file is not UTF-8."""
    try:
        return read_table(path, problems)
    except DatasetError as exc:
        if "not utf-8" not in str(exc):
            raise
        return read_table(path, problems, "latin-1")


class MERGE(Dataset):
    name = "merge"
    description = "MERGE (2024): 3,554 audio clips (3,232 balanced) in Russell quadrants, AV values, published splits"
    citation = ("Louro, Redinho, Santos, Malheiro, Panda, Paiva (2024). MERGE - A bimodal dataset for static "
                "music emotion recognition. arXiv:2407.06060")
    license = "see the Zenodo record; the audio are 30 s AllMusic previews, for research use"
    download = "https://zenodo.org/records/13939205 (MERGE_Audio_Complete.zip, MERGE_Audio_Balanced.zip, ...)"
    layout = "MERGE_Audio_Complete/ with Q1..Q4/ and merge_audio_complete_metadata.csv"
    source_scale = "0-1"
    named_splits = SPLITS

    def __init__(self, root: str | os.PathLike, subset: str = "complete", clip: bool | str = False) -> None:
        super().__init__(root, clip)
        subset = str(subset).lower().removeprefix("audio_").removeprefix("audio-")
        if subset not in SUBSETS:
            raise DatasetError(f"merge: subset={subset!r}; write subset=complete or subset=balanced")
        self.subset = subset
        self.tag = f"audio_{subset}"

    @property
    def folder(self) -> Path:
        """The ``MERGE_Audio_<Subset>`` folder (``--root`` itself when it holds the metadata file)."""
        if (self.root / f"merge_{self.tag}_metadata.csv").exists():
            return self.root
        return self.root / f"MERGE_Audio_{self.subset.capitalize()}"

    def _load_index(self) -> dict[str, Track]:
        folder = self.folder
        meta_path = folder / f"merge_{self.tag}_metadata.csv"
        if not meta_path.exists():
            raise DatasetError(f"{meta_path}: not found; merge (subset={self.subset}) expects "
                               f"MERGE_Audio_{self.subset.capitalize()}/merge_{self.tag}_metadata.csv under --root "
                               f"(download: {self.download})")
        header, rows = _table(meta_path, self._problems)
        song, quad = column(header, meta_path, "Song"), column(header, meta_path, "Quadrant")
        artist, title = optional_column(header, "Artist"), optional_column(header, "Title")
        entries: list[Entry] = []
        for line, c in rows:
            q = c[quad].upper()
            if not c[song] or q not in QUADS:
                self._problems.append(malformed(meta_path, line, f"song {c[song]!r}, quadrant {q!r} (expected Q1..Q4)",
                                                c[song]))
                continue
            entries.append((c[song], meta_path, line, (q, c[artist] if artist is not None else "",
                                                       c[title] if title is not None else "")))
        labels = unique(entries, self._problems)
        av_path = folder / f"merge_{self.tag}_av_values.csv"
        av = read_static([av_path], self._problems, self._labels("0-1"), key=("Song",),
                         columns={"valence": ("Valence",), "arousal": ("Arousal",)}) if av_path.exists() else {}
        if not av_path.exists():
            self._notes.append(f"{av_path.name} not found: quadrant labels only")
        lyrics = self._lyrics()
        index: dict[str, Track] = {}
        for sid, (q, art, tit) in labels.items():
            s = av.get(sid, {})
            meta = {"title": tit} if tit else {}
            if sid in lyrics:
                meta["lyrics"] = str(lyrics[sid])
            index[sid] = Track(sid, folder / q / f"{sid}.mp3", valence=canon(s.get("valence"), "0-1"),
                               arousal=canon(s.get("arousal"), "0-1"), quadrant=q, artist=art or None, metadata=meta)
        for sid in sorted(set(av) - set(index)):
            self._problems.append(Problem("missing_labels", f"{av_path.name}: {sid!r} has AV values but no row in "
                                          f"{meta_path.name} (no quadrant); left out", sid, str(av_path)))
        full = {"complete": 3554, "balanced": 3232}[self.subset]
        if len(labels) != full:
            self._notes.append(f"{len(labels)} songs in {meta_path.name}; the full {self.subset} subset has {full:,}")
        self._note_unlabelled(sorted(p for q in QUADS for p in (folder / q).glob("*.mp3")), set(index))
        return index

    def _lyrics(self) -> dict[str, Path]:
        """Audio id -> lyrics file, from the bimodal metadata's Audio_Song/Lyric_Song pairs (optional)."""
        sub = self.subset.capitalize()
        base = self.root if self.folder != self.root else self.root.parent
        bimodal = base / f"MERGE_Bimodal_{sub}"
        meta = bimodal / f"merge_bimodal_{self.subset}_metadata.csv"
        if not meta.exists():
            return {}
        found: list[Problem] = []
        header, rows = _table(meta, found)
        a, lyr = optional_column(header, "Audio_Song"), optional_column(header, "Lyric_Song")
        if a is None or lyr is None:
            return {}
        where = [base / f"MERGE_Lyrics_{sub}", bimodal / "lyrics"]
        out = {}
        for _, c in rows:
            hit = next((p for d in where for q in QUADS if (p := d / q / f"{c[lyr]}.txt").is_file()), None)
            if hit is not None:
                out[c[a]] = hit
        return out

    def _split_path(self, name: str, part: str) -> Path:
        return self.folder / "tvt_dataframes" / name / f"{name}_{part}_{self.tag}.csv"

    def _split_parts(self, name: str, problems: list[Problem]) -> dict[str, list[str]]:
        """``{part: song ids}`` of the published split ``name``, read from its three files."""
        parts: dict[str, list[str]] = {}
        for part in PARTS:
            path = self._split_path(name, part)
            if not path.exists():
                raise DatasetError(f"{path}: not found; the {name} split of MERGE {self.subset} is in "
                                   f"tvt_dataframes/{name}/ of the release (download: {self.download})")
            header, rows = _table(path, problems)
            song = column(header, path, "Song")
            parts[part] = [c[song] for _, c in rows if c[song]]
        return parts

    def _split_faults(self, name: str, parts: dict[str, list[str]], known: set[str]) -> list[tuple[str, Path, str]]:
        """(problem kind, split file, what is wrong) for each pair of parts sharing songs
        ("split_overlap": a test part holding trained songs would score them) and for songs not
        in ``known`` ("split_unknown_songs")."""
        faults = []
        for i, a in enumerate(PARTS):
            for b in PARTS[i + 1:]:
                both = sorted(set(parts[a]) & set(parts[b]))
                if both:
                    harm = "the test score would include songs used in training" if b == "test" else \
                        "early stopping would be judged on songs listed for training"
                    faults.append(("split_overlap", self._split_path(name, b),
                                   f"{len(both)} song(s) also in {self._split_path(name, a).name} ({_some(both)}): "
                                   f"the {a} and {b} parts of {name} overlap and {harm}; re-download "
                                   f"tvt_dataframes/{name}/ of the release ({self.download})"))
        for part in PARTS:
            missing = sorted(set(parts[part]) - known)
            if missing:
                faults.append(("split_unknown_songs", self._split_path(name, part),
                               f"{len(missing)} song(s) not in the metadata of MERGE {self.subset} "
                               f"({_some(missing)}); is this the right subset? (--dataset-option subset=...)"))
        return faults

    def named_split(self, name: str) -> object:
        """The published ``tvt_70_15_15`` / ``tvt_40_30_30`` split: one fold (train + validate, test),
        with the validate ids in ``info["validate"]`` (the fold's early-stopping set). Split files
        whose parts share songs, or that list songs the metadata does not, are refused."""
        from .splits import Split

        if name not in SPLITS:
            return super().named_split(name)
        parts = self._split_parts(name, self._problems)
        faults = self._split_faults(name, parts, set(self.index))
        if faults:
            _, path, what = faults[0]
            raise DatasetError(f"{path}: {what}")
        train = parts["train"] + parts["validate"]
        return Split(name, [(train, parts["test"])], None,
                     {"dataset": self.name, "subset": self.subset, "validate": parts["validate"]})

    def validate(self) -> ValidationReport:
        """The common report, plus the published splits present under ``tvt_dataframes/``: parts
        that share songs ("split_overlap"), songs missing from the metadata, files missing."""
        rep = super().validate()
        for name in SPLITS:
            present = [self._split_path(name, part).exists() for part in PARTS]
            if not any(present):
                continue
            if not all(present):
                path = self._split_path(name, PARTS[present.index(False)])
                rep.problems.append(Problem("missing_file", f"{path}: not found; the {name} split of MERGE "
                                            f"{self.subset} has train, validate and test files "
                                            f"(download: {self.download})", path=str(path)))
                continue
            try:
                parts = self._split_parts(name, rep.problems)
            except DatasetError as exc:  # a file without a Song column, say
                rep.problems.append(Problem("malformed_file", str(exc), path=str(self._split_path(name, "train"))))
                continue
            listed = set(self.index) | set(self._refused)  # a song left out for its labels is reported once, there
            for kind, path, what in self._split_faults(name, parts, listed):
                rep.problems.append(Problem(kind, f"{path.name}: {what}", path=str(path)))
        return rep


def _some(ids: list[str], n: int = 3) -> str:
    """``'A001', 'A002', 'A003', ...``: the first ``n`` ids."""
    return ", ".join(map(repr, ids[:n])) + (", ..." if len(ids) > n else "")
