"""``mer evaluate``: a model or a run folder scored on a dataset, never on its own training clips.

The model is resolved once (:class:`mer.bundle.Bundle`) and run through the one
:class:`mer.infer.Inference` that ``mer predict`` uses, so the scores are those of what
``mer predict`` outputs (same windows, same engine: ONNX Runtime where the model has its
graphs).

Leakage guard. Every checkpoint ``mer train`` writes records what it was trained on
(``training``: dataset, id space, fingerprint, the ids of its training and validation
clips). Before anything is decoded, each evaluated clip is matched against that record:

- a run folder: each clip is scored by a fold model that did not train on it (on the run's
  own dataset, that is the fold whose test part holds it: out-of-fold predictions);
- a single checkpoint: any clip it trained on is an error (``--allow-train-overlap`` scores
  them anyway and says how many).

Ids are compared within an id space (:attr:`mer.datasets.base.Dataset.space`: emoMusic's
ids are DEAM's), so the guard does not depend on where the data lives, on the working
directory or on symlinks. A checkpoint that does not record its clips but was trained on
the same id space is assumed to have seen all of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import load_dataset, refuse_blocking
from ..datasets.base import Dataset
from ..datasets.items import load_items
from ..datasets.splits import Split
from ..errors import ConfigError, DatasetError
from ..bundle import Bundle
from ..infer.inference import Inference, stack
from .scores import score


def trained_ids(bundle: Bundle, ds: Dataset, split: Split | None = None, fingerprint: str = "") -> set[str] | None:
    """Ids of ``ds`` the model trained on: a set (maybe empty), or None when it cannot tell
    which of the same id space it saw (then it is assumed to have seen them all). The same
    data under another id space (a copied folder dataset) is recognised by its fingerprint."""
    rec = bundle.training
    space = rec.id_space or _space_of(bundle.meta.dataset or "")
    if space != ds.space and not (fingerprint and rec.fingerprint == fingerprint):
        return set()
    if rec.ids is not None:
        return set(rec.ids)
    fold = bundle.meta.fold
    if split is not None and isinstance(fold, int) and fold < len(split.folds):
        return set(split.folds[fold][0])
    return None


def _space_of(dataset: str) -> str:
    from ..datasets import DATASETS

    cls = DATASETS.get(dataset)
    return (cls.id_space or cls.name) if cls is not None else dataset


def candidates(model: str | os.PathLike, trust_remote_code: bool = False) -> tuple[list[Bundle], Split | None]:
    """The fold models of a run folder (with its split), or the one model ``model`` names
    (``trust_remote_code``: the user's grant, :meth:`mer.bundle.Bundle.resolve`)."""
    path = Path(model)
    if path.is_dir() and not (path / "best.json").is_file():
        folds = sorted(path.glob("fold*/best.json"), key=lambda p: int(p.parent.name[4:] or 0))
        if not folds:
            raise ConfigError(f"{path}: no fold*/best.json checkpoints in this run folder")
        split = Split.from_json(path / "split.json") if (path / "split.json").is_file() else None
        return [Bundle.resolve(f.with_suffix(""), trust_remote_code) for f in folds], split
    return [Bundle.resolve(model, trust_remote_code)], None


def assign(ids: list[str], bundles: list[Bundle], ds: Dataset, split: Split | None,
           allow_train_overlap: bool = False, fingerprint: str = "") -> tuple[dict[int, list[str]], list[str]]:
    """({model index: clip ids it scores}, ids every model trained on). Raises on overlap
    unless ``allow_train_overlap`` (then those clips go to the first model)."""
    seen = [trained_ids(b, ds, split, fingerprint) for b in bundles]
    jobs: dict[int, list[str]] = {}
    overlap = []
    for i in ids:
        clean = [k for k, s in enumerate(seen) if s is not None and i not in s]
        if clean:
            jobs.setdefault(clean[0], []).append(i)
        else:
            overlap.append(i)
            if allow_train_overlap:
                jobs.setdefault(0, []).append(i)
    if overlap and not allow_train_overlap:
        what = "every fold model of this run" if len(bundles) > 1 else bundles[0].name
        raise ConfigError(
            f"{len(overlap)} of {len(ids)} clips of {ds.name} at {ds.root} were in the training data of {what} "
            f"(e.g. {overlap[0]!r}), so their scores would overstate its accuracy; evaluate on other data, pass "
            "the run folder (each clip is then scored by a fold model that did not train on it), or pass "
            "--allow-train-overlap to score them anyway")
    return jobs, overlap


def evaluate(model: str | os.PathLike, dataset: str, root: str | os.PathLike, options: dict | None = None,
             device: str = "auto", backend: str = "auto", workers: int = 0, progress: bool = True,
             allow_train_overlap: bool = False, trust_remote_code: bool = False) -> tuple[dict[str, Any], dict | None]:
    """(scores, annotation ceiling or None) of ``model`` (name, checkpoint or run folder) on a dataset
    (``trust_remote_code``: the user's grant to run an ``hf:`` backbone folder's own code)."""
    ds = load_dataset(dataset, root, **(options or {}))
    refuse_blocking(ds)
    tracks = {t.track_id: t for t in ds.tracks(with_audio=True)}
    if not tracks:
        raise ConfigError(f"{dataset} at {root}: no tracks with audio to evaluate; run "
                          f"`mer datasets validate {dataset} --root {root}`")
    bundles, split = candidates(model, trust_remote_code)
    fingerprint = ds.fingerprint()
    jobs, overlap = assign(list(tracks), bundles, ds, split, allow_train_overlap, fingerprint)
    items_all, static_all, dyn_all, quad_all, used = [], [], [], [], []
    for k, ids in sorted(jobs.items()):
        bundle = bundles[k]
        inference = Inference.of(bundle, device, backend)
        items = load_items([tracks[i] for i in ids], bundle.feature, workers=workers, progress=progress)
        static, dyn, quads = stack(inference.many([it.x for it in items]))
        items_all += items
        static_all.append(static)
        quad_all.append(quads)
        dyn_all += dyn
        used.append({**bundle.provenance(), "clips": len(ids), "engine": inference.engine.kind})
    static = np.concatenate(static_all)
    result = score(items_all, static, dyn_all, np.concatenate(quad_all))
    result.update({"models": used, "dataset": ds.name, "dataset_fingerprint": fingerprint,
                   "same_dataset_as_training": any(b.training.fingerprint == fingerprint for b in bundles),
                   "train_overlap": len(overlap),
                   "predictions": [{"id": it.track_id, "valence": float(p[0]), "arousal": float(p[1])}
                                   for it, p in zip(items_all, static)]})
    return result, _ceiling(ds)


def _ceiling(ds: Any) -> dict | None:
    if not hasattr(ds, "annotation_ceiling"):
        return None
    try:
        c = ds.annotation_ceiling()
    except (DatasetError, OSError):
        return None
    return {d: {"max_r": v.max_r, "reliability": v.reliability, "n_songs": v.n_songs} for d, v in c.items()
            if getattr(v, "n_songs", 0)} or None
