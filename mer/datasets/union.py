"""Several datasets as one training set: ``mer benchmark --train pmemo --train deam ...``.

Every loader already puts its labels on the canonical [-1, 1] scale, so the union only has
to keep the ids apart: a track is ``"<dataset>:<id>"``, its artist ``"<dataset>:<artist>"``
(grouped splits stay grouped), and quadrant-only tracks (4Q without a lexicon, RAVDESS,
MERGE without AV values) keep their quadrant, which training turns into the quadrant's
centre (:func:`mer.datasets.items.targets`). ``parts`` is ``"name=ROOT;name=ROOT"`` (or a
mapping), ``options`` a mapping ``{name: {option: value}}`` of each part's loader options.

The union is not one of the releases (``mer datasets list`` does not show it); the cross-
dataset protocol (:mod:`mer.train.benchmark`) builds it when given several training sets.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ..errors import DatasetError
from .base import Dataset, Track


def parse_parts(parts: str | dict | list) -> dict[str, str]:
    """``"pmemo=/a;4q=/b"`` (or ``{"pmemo": "/a"}`` or ``["pmemo=/a", ...]``) -> ``{name: root}``."""
    if isinstance(parts, dict):
        items = [(str(k), str(v)) for k, v in parts.items()]
    else:
        seq = parts if isinstance(parts, list) else str(parts).split(";")
        items = [tuple(p.strip().partition("=")[::2]) for p in seq if str(p).strip()]  # type: ignore[misc]
    out: dict[str, str] = {}
    for name, root in items:
        if not name or not root:
            raise DatasetError(f"union: parts {parts!r}: write NAME=ROOT;NAME=ROOT")
        if name in out:
            raise DatasetError(f"union: {name} given twice")
        out[name] = root
    if not out:
        raise DatasetError("union: no parts; write parts=NAME=ROOT;NAME=ROOT")
    return out


class UnionDataset(Dataset):
    name = "union"
    listed = False
    description = "several datasets as one training set (ids prefixed with the dataset's name)"
    citation = "the parts' citations"
    license = "the parts' licences"
    download = "(the parts' download pages)"
    layout = "parts=NAME=ROOT;NAME=ROOT"
    source_scale = "canonical"

    def __init__(self, root: str | os.PathLike, parts: str | dict | list = "", options: dict | None = None,
                 clip: bool | str = False) -> None:
        super().__init__(root, clip)
        from . import load_dataset

        self.part_roots = parse_parts(parts)
        options = dict(options or {})
        unknown = set(options) - set(self.part_roots)
        if unknown:
            raise DatasetError(f"union: options for {sorted(unknown)}, which are not among the parts "
                               f"({', '.join(self.part_roots)})")
        self.parts: dict[str, Dataset] = {n: load_dataset(n, r, **dict(options.get(n) or {}))
                                          for n, r in self.part_roots.items()}
        self.source_scale = "+".join(ds.source_scale for ds in self.parts.values())

    def _load_index(self) -> dict[str, Track]:
        index: dict[str, Track] = {}
        for name, ds in self.parts.items():
            for t in ds.index.values():
                key = f"{name}:{t.track_id}"
                index[key] = replace(t, track_id=key, artist=f"{name}:{t.artist}" if t.artist else None,
                                     metadata={**t.metadata, "dataset": name, "source_id": t.track_id})
            for p in ds.blocking_problems():
                self._problems.append(replace(p, track_id=f"{name}:{p.track_id}" if p.track_id else None,
                                              message=f"{name}: {p.message}"))
        return index

    def validate(self) -> Any:
        rep = super().validate()
        for name, ds in self.parts.items():
            rep.problems += [replace(p, message=f"{name}: {p.message}") for p in ds.validate().problems
                             if not p.blocking and p.kind not in ("missing_audio",)]
        return rep

