"""4Q audio emotion dataset (Panda, Malheiro, Paiva 2018): 900 30 s clips, 225 per quadrant.

Release layout (paths relative to ``--root``)::

    Q1/<Song>.mp3 ... Q4/<Song>.mp3
    panda_dataset_taffc_annotations.csv    Song, Quadrant
    panda_dataset_taffc_metadata.csv       latin-1; Song, Artist, Title, Quadrant, MoodsFoundStr, ...

Labels: the quadrant. With ``lexicon=`` (Warriner, Kuperman, Brysbaert 2013 norms,
``Ratings_Warriner_et_al.csv``) each clip also gets a continuous (weak) valence/arousal: the
mean of its ``MoodsFoundStr`` words' ``V.Mean.Sum`` / ``A.Mean.Sum`` (1-9, converted with
``(x - 5) / 4``), the same lexicon Panda et al. used to assign the quadrants. Words missing
from the lexicon are reported by ``validate()``, and so are songs listed twice (a song whose
rows disagree is left out) and lexicon values off the 1-9 scale (see
:mod:`mer.datasets.problems`). Each track's ``metadata`` holds its ``title``, the lexicon words
(``moods``, ``MoodsFoundStr``) and every AllMusic mood word the editors gave the song
(``allmusic``, ``MoodsStr``, ``"; "``-separated: what the mood-word tagger learns from).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..scales import to_canonical
from .base import Dataset, Track
from .problems import Entry, LabelScale, Problem, ScaleCheck, unique
from .tables import column, malformed, parse_floats, read_info, read_table

ANNOTATIONS = "panda_dataset_taffc_annotations.csv"
METADATA = "panda_dataset_taffc_metadata.csv"


def load_lexicon(path: str | os.PathLike, problems: list[Problem] | None = None,
                 rule: LabelScale = LabelScale("1-9")) -> dict[str, tuple[float, float]]:
    """Warriner et al. norms: ``{word: (valence, arousal)}`` on their 1-9 scale, words in lower
    case (where the norms rate two spellings, "aids" and "AIDS", the lower-case one is kept).

    Malformed rows, values off the scale (clipped when ``rule.clip``) and words listed twice
    are appended to ``problems``; without a list, a blocking one raises DatasetError."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: lexicon not found; pass the Warriner et al. (2013) "
                           "Ratings_Warriner_et_al.csv with --lexicon")
    found: list[Problem] = [] if problems is None else problems
    header, rows = read_table(path, found)
    w, v, a = (column(header, path, n) for n in ("Word", "V.Mean.Sum", "A.Mean.Sum"))
    entries: list[Entry] = []
    with ScaleCheck(path, rule, found) as check:
        for line, c in rows:
            vals = parse_floats([c[v], c[a]])
            if not c[w] or vals is None:
                found.append(malformed(path, line, "need a word and numeric V.Mean.Sum and A.Mean.Sum"))
                continue
            va = check(vals, line, None, ("valence", "arousal"))
            if va is not None:
                entries.append((c[w], path, line, (float(va[0]), float(va[1]))))
    words = unique(entries, found, keys_are_tracks=False)
    out = {word.lower(): va for word, va in words.items() if word.lower() not in words or word.islower()}
    blocking = [p for p in found if p.blocking]
    if problems is None and blocking:
        raise DatasetError(blocking[0].message)
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

    def __init__(self, root: str | os.PathLike, lexicon: str | os.PathLike | None = None,
                 clip: bool | str = False) -> None:
        super().__init__(root, clip)
        self.lexicon_path = Path(lexicon) if lexicon else None

    def _load_index(self) -> dict[str, Track]:
        ann = self._require(ANNOTATIONS)
        header, rows = read_table(ann, self._problems)
        song, quad = column(header, ann, "Song"), column(header, ann, "Quadrant")
        entries: list[Entry] = []
        for line, c in rows:
            q = c[quad].upper()
            if not c[song] or q not in ("Q1", "Q2", "Q3", "Q4"):
                self._problems.append(malformed(ann, line, f"song {c[song]!r}, quadrant {q!r} (expected Q1..Q4)",
                                                c[song]))
                continue
            entries.append((c[song], ann, line, q))
        labels: dict[str, str] = unique(entries, self._problems)
        meta = self._metadata()
        lexicon = load_lexicon(self.lexicon_path, self._problems, self._labels("1-9")) if self.lexicon_path else None
        index: dict[str, Track] = {}
        for sid, q in labels.items():
            m = meta.get(sid, {})
            va = self._mood_va(sid, m.get("moods", ""), lexicon) if lexicon is not None else None
            index[sid] = Track(sid, self.root / q / f"{sid}.mp3", valence=None if va is None else va[0],
                               arousal=None if va is None else va[1], quadrant=q, artist=m.get("artist"),
                               metadata={k: m[k] for k in ("title", "moods", "allmusic") if k in m})
        audio_files = sorted(self.root.glob("Q[1-4]/*.mp3"))
        self._note_unlabelled(audio_files, set(index))
        return index

    def _metadata(self) -> dict[str, dict[str, str]]:
        path = self.root / METADATA
        if not path.exists():
            self._problems.append(Problem("missing_file", f"{path.name} not found: no artists (splits fall back to "
                                          "songs) and no mood words", path=str(path)))
            return {}
        entries = read_info(path, self._problems, ("Song",),
                            {"artist": ("Artist",), "title": ("Title",), "moods": ("MoodsFoundStr",)},
                            optional={"allmusic": ("MoodsStr",)})
        return unique(entries, self._problems)

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
        return float(to_canonical(v, "1-9")), float(to_canonical(a, "1-9"))
