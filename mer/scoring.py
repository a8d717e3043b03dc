"""Evaluate a checkpoint or a run folder on a dataset (what ``mer evaluate`` calls)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import load_checkpoint
from .data import load_items
from .errors import ConfigError, DatasetError
from .evaluation import score
from .features import FeatureConfig


def evaluate_path(path: str | os.PathLike, dataset: str, root: str, options: dict | None = None,
                  device: str = "auto", workers: int = 0, progress: bool = True) -> tuple[dict, dict | None]:
    """(scores, annotation ceiling or None). A run folder on its own dataset: out-of-fold scores."""
    from .datasets import load_dataset
    from .engine import predict_items, resolve_device
    from .splits import Split

    path = Path(path)
    dev = resolve_device(device)
    ds = load_dataset(dataset, root, **(options or {}))
    tracks = {t.track_id: t for t in ds.tracks(with_audio=True)}
    if not tracks:
        raise ConfigError(f"{dataset} at {root}: no tracks with audio to evaluate")
    if path.is_dir():
        folds = sorted(path.glob("fold*/best.json"))
        if not folds:
            raise ConfigError(f"{path}: no fold*/best.json checkpoints in this run folder")
        split = Split.from_json(path / "split.json") if (path / "split.json").exists() else None
        _, meta = load_checkpoint(folds[0])
        own = split is not None and meta.get("dataset") == dataset and \
            Path(meta.get("dataset_root", "")).resolve() == Path(root).resolve()
        if own:
            jobs = [(f, [i for i in split.folds[int(f.parent.name[4:])][1] if i in tracks]) for f in folds]
        else:
            jobs = [(folds[0], list(tracks))]
    else:
        jobs = [(path, list(tracks))]
    items_all, static_all, dyn_all = [], [], []
    for ckpt, ids in jobs:
        model, meta = load_checkpoint(ckpt)
        model.to(dev)
        items = load_items([tracks[i] for i in ids], FeatureConfig.from_dict(meta["feature"]), workers=workers,
                           progress=progress)
        static, dyn = predict_items(model, items, dev)
        items_all += items
        static_all.append(static)
        dyn_all += dyn
    result = score(items_all, np.concatenate(static_all), dyn_all)
    result["checkpoints"] = [str(c) for c, _ in jobs]
    return result, _ceiling(ds)


def _ceiling(ds: Any) -> dict | None:
    if not hasattr(ds, "annotation_ceiling"):
        return None
    try:
        c = ds.annotation_ceiling()
    except (DatasetError, OSError, ValueError):
        return None
    return {d: {"max_r": v.max_r, "reliability": v.reliability, "n_songs": v.n_songs} for d, v in c.items()
            if getattr(v, "n_songs", 0)} or None
