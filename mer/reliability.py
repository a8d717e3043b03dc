"""Annotation ceiling: how reliable an averaged label is, and the best correlation a model could reach.

With k raters whose single-rater reliability is r (mean pairwise correlation between
raters), the reliability of their average is given by the Spearman-Brown formula
``R_k = k r / (1 + (k - 1) r)``. A model's correlation with the averaged label cannot
exceed ``sqrt(R_k)`` on average, since the label's noise is uncorrelated with anything;
that bound is the "ceiling" reported beside model scores.

For dynamic labels this is computed per song from the raters' curves, then averaged over
songs (as MediaEval reports per-song correlations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def spearman_brown(r: float, k: float) -> float:
    """Reliability of the mean of ``k`` raters whose single-rater reliability is ``r``."""
    if k <= 0:
        raise ValueError("k must be positive")
    return k * r / (1.0 + (k - 1.0) * r)


def mean_pairwise_r(ratings: np.ndarray) -> float:
    """Mean Pearson r over all pairs of rows of ``ratings`` (raters x items); NaN if undefined."""
    x = np.asarray(ratings, dtype=np.float64)
    x = x[np.std(x, axis=1) > 0]
    if x.shape[0] < 2 or x.shape[1] < 3:
        return float("nan")
    c = np.corrcoef(x)
    return float(c[np.triu_indices_from(c, k=1)].mean())


@dataclass
class Ceiling:
    dimension: str
    n_songs: int
    raters: float  # mean raters per song
    single_rater_r: float
    reliability: float  # of the averaged label (Spearman-Brown)
    max_r: float  # sqrt(reliability): the highest expected correlation with the averaged label


def dynamic_ceiling(curves: list[np.ndarray], dimension: str) -> Ceiling:
    """Ceiling from per-song rater curves (each ``(raters, T)``), averaged over songs."""
    rows = []
    for c in curves:
        r = mean_pairwise_r(c)
        if np.isfinite(r):
            rel = spearman_brown(r, c.shape[0])
            rows.append((c.shape[0], r, rel, np.sqrt(max(rel, 0.0))))
    if not rows:
        nan = float("nan")
        return Ceiling(dimension, 0, nan, nan, nan, nan)
    a = np.array(rows)
    return Ceiling(dimension, len(rows), float(a[:, 0].mean()), float(a[:, 1].mean()), float(a[:, 2].mean()),
                   float(a[:, 3].mean()))


def static_ceiling(ratings: np.ndarray, dimension: str, n_splits: int = 50, seed: int = 0) -> Ceiling:
    """Ceiling of per-song mean labels from individual ratings ``(songs, raters)``, NaN where a
    rater did not rate a song (AMG1608's layout).

    Split-half agreement: each song's raters are dealt at random into two halves, the two
    half means are correlated across songs (Pearson), and Spearman-Brown with k = 2 gives the
    reliability of the full mean; averaged over ``n_splits`` random deals. Songs with fewer
    than two ratings are left out. ``single_rater_r`` inverts Spearman-Brown at the mean
    number of raters per song."""
    x = np.asarray(ratings, dtype=np.float64)
    rated = [row[np.isfinite(row)] for row in x]
    rated = [r for r in rated if len(r) >= 2]
    nan = float("nan")
    if len(rated) < 3:
        return Ceiling(dimension, len(rated), nan, nan, nan, nan)
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(n_splits):
        halves = np.empty((len(rated), 2))
        for i, r in enumerate(rated):
            perm = rng.permutation(len(r))
            halves[i] = r[perm[: len(r) // 2]].mean(), r[perm[len(r) // 2:]].mean()
        if np.std(halves[:, 0]) > 0 and np.std(halves[:, 1]) > 0:
            rs.append(np.corrcoef(halves[:, 0], halves[:, 1])[0, 1])
    if not rs:
        return Ceiling(dimension, len(rated), nan, nan, nan, nan)
    rel = spearman_brown(float(np.mean(rs)), 2)
    k = float(np.mean([len(r) for r in rated]))
    single = rel / (k - (k - 1) * rel) if k > 1 else nan
    return Ceiling(dimension, len(rated), k, float(single), float(rel), float(np.sqrt(max(rel, 0.0))))
