"""4Q audio emotion dataset (Panda, Malheiro, Paiva 2018): 900 30 s clips, 225 per quadrant.

Release layout (paths relative to ``--root``)::

    Q1/<Song>.mp3 ... Q4/<Song>.mp3
    panda_dataset_taffc_annotations.csv    Song, Quadrant
    panda_dataset_taffc_metadata.csv       latin-1; Song, Artist, Title, Quadrant, MoodsFoundStr, ...

Labels: the quadrant. With ``lexicon=`` (Warriner, Kuperman, Brysbaert 2013 norms,
``Ratings_Warriner_et_al.csv``) each clip also gets a continuous (weak) valence/arousal: the
mean of its ``MoodsFoundStr`` words' ``V.Mean.Sum`` / ``A.Mean.Sum`` (1-9, converted with
``(x - 5) / 4``), the same lexicon Panda et al. used to assign the quadrants. Words missing
from the lexicon are reported by ``validate()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset, Problem, Track, canon, cell_float, column, read_rows

ANNOTATIONS = "panda_dataset_taffc_annotations.csv"
METADATA = "panda_dataset_taffc_metadata.csv"


def load_lexicon(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """Warriner et al. norms: ``{word: (valence, arousal)}`` on their 1-9 scale."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: lexicon not found; pass the Warriner et al. (2013) "
                           "Ratings_Warriner_et_al.csv with --lexicon")
    header, rows = read_rows(path)
    w, v, a = (column(header, path, n) for n in ("Word", "V.Mean.Sum", "A.Mean.Sum"))
    out = {}
    for _, c in rows:
        vals = (cell_float(c, v), cell_float(c, a))
        if len(c) > w and vals[0] is not None and vals[1] is not None:
            out[c[w].lower()] = vals  # type: ignore[assignment]
    return out


class FourQ(Dataset):
    name = "4q"
    description = "4Q (Panda et al. 2018): 900 x 30 s clips labelled with Russell quadrants (225 each)"
    citation = ("Panda, Malheiro, Paiva (2018). Novel audio features for music emotion recognition. "
                "IEEE Transactions on Affective Computing 11(4)")
    license = "research dataset of 30 s previews (AllMusic); see the release's readme"
    download = "http://mir.dei.uc.pt/downloads.html ('4QAED', the TAFFC 2018 dataset)"
    layout = "Q1/..Q4/ and panda_dataset_taffc_annotations.csv"
    source_scale = "1-9"  # of the lexicon-derived continuous labels

    def __init__(self, root: str | os.PathLike, lexicon: str | os.PathLike | None = None) -> None:
        super().__init__(root)
        self.lexicon_path = Path(lexicon) if lexicon else None

    def _load_index(self) -> dict[str, Track]:
        ann = self._require(ANNOTATIONS)
        header, rows = read_rows(ann)
        song, quad = column(header, ann, "Song"), column(header, ann, "Quadrant")
        labels: dict[str, str] = {}
        for line, c in rows:
            q = c[quad].upper() if len(c) > quad else ""
            if q not in ("Q1", "Q2", "Q3", "Q4"):
                self._problems.append(Problem("malformed_row", f"{ann.name} line {line}: quadrant {q!r}", c[song], str(ann)))
                continue
            labels[c[song]] = q
        meta = self._metadata()
        lexicon = load_lexicon(self.lexicon_path) if self.lexicon_path else None
        index: dict[str, Track] = {}
        for sid, q in labels.items():
            m = meta.get(sid, {})
            va = self._mood_va(sid, m.get("moods", ""), lexicon) if lexicon is not None else None
            index[sid] = Track(sid, self.root / q / f"{sid}.mp3", valence=None if va is None else va[0],
                               arousal=None if va is None else va[1], quadrant=q, artist=m.get("artist"),
                               metadata={k: m[k] for k in ("title", "moods") if k in m})
        audio_files = sorted(self.root.glob("Q[1-4]/*.mp3"))
        self._note_unlabelled(audio_files, set(index))
        return index

    def _metadata(self) -> dict[str, dict[str, str]]:
        path = self.root / METADATA
        if not path.exists():
            self._problems.append(Problem("missing_file", f"{path.name} not found: no artists (splits fall back to "
                                          "songs) and no mood words", path=str(path)))
            return {}
        header, rows = read_rows(path, encoding="latin-1")
        cols = {k: column(header, path, n) for k, n in
                (("song", "Song"), ("artist", "Artist"), ("title", "Title"), ("moods", "MoodsFoundStr"))}
        return {c[cols["song"]]: {k: c[i] for k, i in cols.items() if k != "song"}
                for _, c in rows if len(c) > max(cols.values())}

    def _mood_va(self, sid: str, moods: str, lexicon: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
        words = [w.strip().lower() for w in moods.split(";") if w.strip()]
        found = [lexicon[w] for w in words if w in lexicon]
        for w in words:
            if w not in lexicon:
                self._problems.append(Problem("unknown_word", f"mood word {w!r} not in the lexicon", sid))
        if not found:
            if words or moods == "":
                self._problems.append(Problem("no_mood_label", "no mood word found in the lexicon: no continuous label",
                                              sid))
            return None
        v, a = np.mean(found, axis=0)
        return canon(v, "1-9"), canon(a, "1-9")  # type: ignore[return-value]
