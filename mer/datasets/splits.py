"""Train/test splits: artist-grouped, quadrant-stratified k-fold, and the official protocols.

A :class:`Split` is a named list of folds, each a (train ids, test ids) pair; it is
deterministic from its seed and round-trips through JSON, so a run can be reproduced.

- :func:`kfold`: no group (artist, or the song itself when artists are unknown) is ever on
  both sides of a fold; when strata (e.g. quadrants) are given, groups are dealt so that
  every fold gets about the same share of each stratum.
- :func:`mediaeval2015`: DEAM; train on songs 1-2000 with dynamic labels, test on the full
  songs 2001-2058. (The benchmark's 431-song training selection is not part of the DEAM
  annotations; pass ``train_ids`` to use it.)
- :func:`mediaeval2013`: emoMusic's development/evaluation sets from ``songs_info.csv``.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..io import write_json_atomic
from .base import Dataset


@dataclass
class Split:
    name: str
    folds: list[tuple[list[str], list[str]]]
    seed: int | None = None
    info: dict = field(default_factory=dict)

    def to_json(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, {"name": self.name, "seed": self.seed, "info": self.info,
                                 "folds": [{"train": tr, "test": te} for tr, te in self.folds]})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Split":
        try:
            d = json.loads(Path(path).read_text())
            return cls(d["name"], [(f["train"], f["test"]) for f in d["folds"]], d.get("seed"), d.get("info", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a split file written by mer ({exc})") from None


def kfold(ids: Sequence[str], k: int, groups: Sequence[str | None] | None = None,
          strata: Sequence[str | None] | None = None, seed: int = 0) -> Split:
    """Artist-grouped (when ``groups`` given), stratified (when ``strata`` given) k-fold split."""
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ConfigError("duplicate track ids given to kfold")
    group_of = [g if g else f"__song__{i}" for g, i in zip(groups or [None] * len(ids), ids)]
    members: dict[str, list[int]] = defaultdict(list)
    for idx, g in enumerate(group_of):
        members[g].append(idx)
    if k < 2:
        raise ConfigError(f"--folds must be at least 2 (got {k})")
    if k > len(members):
        raise ConfigError(f"--folds {k} is more than the {len(members)} independent groups (artists or songs) "
                          "in the data; use fewer folds")
    strata_of = list(strata) if strata is not None else [None] * len(ids)
    total = Counter(strata_of)
    rng = np.random.default_rng(seed)
    names = list(members)
    rng.shuffle(names)
    names.sort(key=lambda g: -len(members[g]))  # big groups first, ties in shuffled order
    fold_count: list[Counter[str | None]] = [Counter() for _ in range(k)]
    fold_size = [0] * k
    assignment: dict[str, int] = {}
    for g in names:
        gc = Counter(strata_of[i] for i in members[g])
        # cost: how far each stratum would exceed its fair share, then fold size
        costs = [(sum(max(0.0, fold_count[f][s] + n - total[s] / k) for s, n in gc.items()), fold_size[f], f)
                 for f in range(k)]
        f = min(costs)[2]
        assignment[g] = f
        fold_count[f].update(gc)
        fold_size[f] += len(members[g])
    folds = []
    for f in range(k):
        test = [ids[i] for i in range(len(ids)) if assignment[group_of[i]] == f]
        train = [ids[i] for i in range(len(ids)) if assignment[group_of[i]] != f]
        folds.append((train, test))
    return Split(f"kfold{k}", folds, seed, {"grouped_by": "artist" if groups else "song",
                                            "stratified": strata is not None})


def dataset_kfold(ds: Dataset, k: int, seed: int = 0, with_audio: bool = True) -> Split:
    """k-fold over a dataset's tracks: grouped by artist where known, stratified by quadrant labels."""
    tracks = list(ds.tracks(with_audio=with_audio))
    if not tracks:
        raise ConfigError(f"{ds.name} at {ds.root}: no tracks with audio to split")
    quads = [t.quadrant for t in tracks]
    split = kfold([t.track_id for t in tracks], k, groups=[t.artist for t in tracks],
                  strata=quads if any(quads) else None, seed=seed)
    split.info.update(dataset=ds.name, n_tracks=len(tracks), artists_known=sum(t.artist is not None for t in tracks))
    return split


def mediaeval2015(ds: Dataset, train_ids: Sequence[str] | None = None) -> Split:
    """DEAM's MediaEval 2015 protocol: train on 1-2000 with dynamic labels, test on 2001-2058."""
    tracks = list(ds.index.values())
    test = [t.track_id for t in tracks if t.track_id.isdigit() and 2001 <= int(t.track_id) <= 2058]
    train = [str(i) for i in train_ids] if train_ids is not None else \
        [t.track_id for t in tracks if t.track_id.isdigit() and int(t.track_id) <= 2000 and t.dynamic is not None]
    if not test or not train:
        raise ConfigError(f"{ds.root}: the MediaEval 2015 split needs DEAM songs 1-2000 with dynamic labels and "
                          f"2001-2058 (found {len(train)} and {len(test)})")
    return Split("mediaeval2015", [(train, test)], None, {"dataset": ds.name})


def mediaeval2013(ds: Dataset) -> Split:
    """emoMusic's MediaEval 2013 development (train) / evaluation (test) sets."""
    sets = {t.track_id: t.metadata.get("mediaeval2013_set") for t in ds.index.values()}
    train = [i for i, s in sets.items() if s == "development"]
    test = [i for i, s in sets.items() if s == "evaluation"]
    if not train or not test:
        raise ConfigError(f"{ds.root}: the MediaEval 2013 split needs annotations/songs_info.csv with its "
                          "'Mediaeval 2013 set' column")
    return Split("mediaeval2013", [(train, test)], None, {"dataset": ds.name})


PROTOCOLS = {"mediaeval2015": mediaeval2015, "mediaeval2013": mediaeval2013}
