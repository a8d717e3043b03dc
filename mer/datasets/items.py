"""From dataset tracks to model inputs with labels: :class:`Item` and :func:`load_items` (numpy only).

:func:`load_items` turns tracks into items (features from the
:class:`~mer.cache.FeatureCache`, decoded in parallel the first time). Static targets are
the track's (valence, arousal); a track with only a quadrant label (4Q without a lexicon)
gets the quadrant's centre point. Dynamic targets are put on the model's 0.5 s grid, NaN
where unlabelled. Scoring (:mod:`mer.evaluation`) and training (:mod:`mer.train`) both
start from items; training's crops and cached embeddings are in :mod:`mer.train.data`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..cache import FeatureCache
from ..features import FeatureConfig
from ..grid import n_steps, time_to_step
from ..scales import QUADRANTS, quadrant_center
from ..workers import pool
from .base import Track


@dataclass
class Item:
    track_id: str
    x: np.ndarray  # (C, F, T) features, or (n, D) precomputed embeddings for a frozen backbone
    static: np.ndarray | None  # (2,)
    dynamic: np.ndarray | None  # (n_steps, 2) on the model grid, NaN where unlabelled
    quadrant: int  # 1..4, 0 = unknown
    artist: str | None
    target: np.ndarray | None = None  # static training target when it differs from the label (quadrant_weight)

    @property
    def static_target(self) -> np.ndarray | None:
        return self.static if self.target is None else self.target


def targets(track: Track, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(static (2,), dynamic (n, 2) with NaN gaps) for a clip with ``n`` model steps; a clip
    with only a quadrant label gets the quadrant's centre as its static label."""
    static = track.static
    if static is None and track.quadrant:
        static = np.array(quadrant_center(track.quadrant), dtype=np.float32)
    dynamic = None
    if track.dynamic is not None and track.times is not None:
        dynamic = np.full((n, 2), np.nan, dtype=np.float32)
        steps = time_to_step(track.times)
        ok = (steps >= 0) & (steps < n)
        dynamic[steps[ok]] = track.dynamic[ok]
    return static, dynamic


def toward_quadrant(static: np.ndarray, quadrant: str, weight: float) -> np.ndarray:
    """``(1 - w) * static + w * centre`` of ``quadrant`` (+-0.5, +-0.5): the training target
    of ``quadrant_weight``. For 4Q, whose ground truth is the quadrant and whose (valence,
    arousal) is estimated from mood words, this keeps the targets on the right side of the
    axes while still ordering songs within a quadrant."""
    centre = np.array(quadrant_center(quadrant), dtype=np.float32)
    return ((1 - weight) * static + weight * centre).astype(np.float32)


def _features(args: tuple[FeatureConfig, str, str]) -> np.ndarray:
    config, cache_dir, path = args
    return FeatureCache(config, cache_dir or None).get(path)


def load_items(tracks: list[Track], feature: FeatureConfig, cache_dir: str = "", workers: int = 0,
               progress: bool = True, quadrant_weight: float = 0.0) -> list[Item]:
    """Features (cached) and targets for ``tracks``; decoding runs in ``workers`` processes."""
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    jobs = [(feature, cache_dir, str(t.audio_path)) for t in tracks]
    bar = dict(total=len(jobs), desc="features", unit="clip", disable=not progress, leave=False)
    if workers > 1 and len(jobs) > 8:
        with pool(workers) as executor:
            feats = list(tqdm(executor.map(_features, jobs, chunksize=4), **bar))
    else:
        feats = [_features(j) for j in tqdm(jobs, **bar)]
    items = []
    for t, x in zip(tracks, feats):
        n = n_steps(x.shape[-1], feature)
        static, dynamic = targets(t, n)
        # (a clip with a quadrant always has a static label: its own, or the quadrant's centre)
        target = (toward_quadrant(static, t.quadrant, quadrant_weight)
                  if quadrant_weight and t.quadrant and static is not None else None)
        q = QUADRANTS[t.quadrant].number if t.quadrant in QUADRANTS else 0
        items.append(Item(t.track_id, x, static, dynamic, q, t.artist, target))
    return items
