"""Evaluation metrics: pure numpy functions on arrays, in the style of mir_eval.

Regression metrics take ``y_true`` and ``y_pred`` of equal shape; for static labels that is
one value per song, for dynamic labels a flat array of frames or a list of per-song arrays
(see :func:`per_song`). All metrics are computed per dimension: call them once for
valence and once for arousal. Every function calls :func:`validate` first, which raises
``ValueError`` on empty input, shape mismatch or non-finite values.

Definitions (n samples, t = truth, p = prediction):

- RMSE = sqrt(mean((p - t)^2))
- Pearson r = cov(t, p) / (sd(t) sd(p)); NaN when either side is constant.
- R^2 = 1 - sum((t - p)^2) / sum((t - mean(t))^2) (can be negative).
- Lin's CCC = 2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))^2), population moments.
- Quadrant accuracy, macro-F1 (mean over the classes present in truth or prediction) and
  the confusion matrix (rows = truth, columns = prediction) over labels 1..4.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np


def validate(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check two arrays are non-empty, equally shaped and finite; return them as float64."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: y_true {t.shape} vs y_pred {p.shape}")
    if t.size == 0:
        raise ValueError("empty input: no values to score")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("input contains NaN or infinite values")
    return t.ravel(), p.ravel()


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    t, p = validate(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    t, p = validate(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation; NaN (not an error) when either input is constant."""
    t, p = validate(y_true, y_pred)
    dt, dp = t - t.mean(), p - p.mean()
    denom = np.sqrt(np.sum(dt**2) * np.sum(dp**2))
    if denom == 0.0:
        return float("nan")
    return float(np.clip(np.sum(dt * dp) / denom, -1.0, 1.0))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination; NaN when the truth is constant."""
    t, p = validate(y_true, y_pred)
    ss_tot = np.sum((t - t.mean()) ** 2)
    if ss_tot == 0.0:
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / ss_tot)


def ccc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient (population moments)."""
    t, p = validate(y_true, y_pred)
    mt, mp = t.mean(), p.mean()
    cov = np.mean((t - mt) * (p - mp))
    denom = t.var() + p.var() + (mt - mp) ** 2
    if denom == 0.0:
        return float("nan")
    return float(2.0 * cov / denom)


def per_song(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: Sequence[np.ndarray],
    y_pred: Sequence[np.ndarray],
) -> tuple[float, float, int]:
    """Apply ``metric`` to each song's curve; return (mean, sd, n_valid) across songs.

    This is how MediaEval reports dynamic results: a score per song, then its mean and
    standard deviation over songs. Songs where the metric is undefined (e.g. Pearson r on a
    constant curve) are left out of the mean and counted out of ``n_valid``, with a warning.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true curves but {len(y_pred)} predicted curves")
    if len(y_true) == 0:
        raise ValueError("empty input: no songs to score")
    scores = np.array([metric(t, p) for t, p in zip(y_true, y_pred)], dtype=np.float64)
    valid = scores[np.isfinite(scores)]
    if valid.size < scores.size:
        warnings.warn(f"{scores.size - valid.size} of {scores.size} songs have an undefined score "
                      "(constant curve) and are left out", RuntimeWarning, stacklevel=2)
    if valid.size == 0:
        return float("nan"), float("nan"), 0
    return float(valid.mean()), float(valid.std()), int(valid.size)


def pooled(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: Sequence[np.ndarray],
    y_pred: Sequence[np.ndarray],
) -> float:
    """Apply ``metric`` once to all frames of all songs concatenated."""
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need equally many, non-zero curves (got {len(y_true)} and {len(y_pred)})")
    return metric(np.concatenate([np.ravel(t) for t in y_true]), np.concatenate([np.ravel(p) for p in y_pred]))


def _validate_labels(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: y_true {t.shape} vs y_pred {p.shape}")
    if t.size == 0:
        raise ValueError("empty input: no labels to score")
    unknown = set(np.unique(np.concatenate([t.ravel(), p.ravel()])).tolist()) - set(labels)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in {list(labels)}")
    return t.ravel(), p.ravel()


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] = (1, 2, 3, 4)) -> np.ndarray:
    """Counts with rows = true label, columns = predicted label, in ``labels`` order."""
    t, p = _validate_labels(y_true, y_pred, labels)
    index = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (np.array([index[x] for x in t.tolist()]), np.array([index[x] for x in p.tolist()])), 1)
    return cm


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] = (1, 2, 3, 4)) -> float:
    """Fraction of items whose predicted label equals the true one."""
    t, p = _validate_labels(y_true, y_pred, labels)
    return float(np.mean(t == p))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] = (1, 2, 3, 4)) -> float:
    """Unweighted mean of per-class F1 over classes present in truth or prediction.

    A class with no true and no predicted items is skipped (it would otherwise count as 0
    or 1 arbitrarily); this matches scikit-learn's ``f1_score(average="macro")`` when
    ``labels`` is not forced.
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    return float(f1[present].mean())


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """All static regression metrics for one dimension, as a dict."""
    return {"rmse": rmse(y_true, y_pred), "pearson": pearson(y_true, y_pred),
            "r2": r2(y_true, y_pred), "ccc": ccc(y_true, y_pred)}
