"""The folds a run trains and tests on: made from its config, or the ones its folder was started with.

Shared by :mod:`mer.train.run` (supervised runs) and :mod:`mer.train.distil` (students), so a
resumed run of either keeps its folds, and a changed dataset cannot silently move clips a fold
trained on into its test part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets.splits import Split, dataset_kfold, mediaeval2013, mediaeval2015
from ..errors import ConfigError
from .config import TrainConfig


def make_split(cfg: TrainConfig, ds) -> Split:  # noqa: ANN001
    """The folds of ``cfg``: a named protocol, a split JSON, all clips (folds 1), or grouped k-fold."""
    if cfg.split == "mediaeval2015":
        return mediaeval2015(ds)
    if cfg.split == "mediaeval2013":
        return mediaeval2013(ds)
    if cfg.split in ds.named_splits:  # a release's own published split (MERGE's tvt_70_15_15, ...)
        return ds.named_split(cfg.split)
    if cfg.split:
        return Split.from_json(cfg.split)
    if cfg.folds == 1:
        return Split("all", [([t.track_id for t in ds.tracks(with_audio=True)], [])], cfg.seed, {"dataset": ds.name})
    return dataset_kfold(ds, cfg.folds, seed=cfg.seed)


def saved_split(out: Path, ds: Any, fingerprint: str) -> Split | None:
    """The split a run folder was started with; ConfigError when the dataset changed since."""
    path = out / "split.json"
    if not path.is_file():
        return None
    split = Split.from_json(path)
    was = split.info.get("dataset_fingerprint")
    if was and was != fingerprint:
        raise ConfigError(f"{out}: the dataset changed since this run started (fingerprint {was} -> {fingerprint}: "
                          "clips or labels differ), so its folds no longer hold; start a new --out (resuming would "
                          "put clips a fold trained on into its test part)")
    return split


def finished_fold(fold_dir: Path) -> dict[str, Any] | None:
    """The test results a resumed run's fold already has (``test.json``), or None; a corrupt one
    is a one-line ConfigError saying to delete it."""
    import json

    path = fold_dir / "test.json"
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except ValueError:
        raise ConfigError(f"{path}: corrupt (not JSON); delete it and --resume again to re-test that fold") from None
