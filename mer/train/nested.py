"""Honest estimates: repeated, nested, artist-grouped cross-validation of clip-level models.

Protocol. Outer: ``outer``-fold split grouped by artist and stratified by quadrant, repeated
over ``seeds``. Inside each outer training part an ``inner``-fold split (grouped, stratified,
seeded from the outer seed and fold) scores every point of the candidate's grid; the best
point (pooled inner out-of-fold macro-F1; ties go to the first, so grids run from simple to
complex) is refit on the whole outer training part and only then predicts the outer test
fold. A temperature for the probabilities is fit on the inner out-of-fold predictions too.
The outer test fold never influences any choice.

Reported per candidate: macro-F1 mean and sd over the repeats (each repeat pools its outer
out-of-fold predictions), the sd over the ``outer x repeats`` folds, a 95% interval from the
fold scores, accuracy, expected calibration error (10 bins, top label) before and after the
temperature, and how often each grid point was chosen. Everything that learns from data
(standardisation included) lives in the estimator ``factory(**params)`` returns, so it is
refit on every training part. Needs scikit-learn (``pip install 'mer-toolkit[train]'``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

Factory = Callable[..., Any]


def group_kfold(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Artist-grouped, class-stratified k-fold (sklearn's StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def ece(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top label over ``bins`` equal-width confidence bins."""
    conf = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    which = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    return float(sum((which == b).mean() * abs(correct[which == b].mean() - conf[which == b].mean())
                     for b in range(bins) if (which == b).any()))


def reliability(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray, bins: int = 10) -> list[tuple]:
    """(bin centre, mean confidence, accuracy, count) per non-empty confidence bin: a reliability diagram."""
    conf = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    which = np.clip(np.digitize(conf, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)
    return [((b + 0.5) / bins, float(conf[which == b].mean()), float(correct[which == b].mean()),
             int((which == b).sum())) for b in range(bins) if (which == b).any()]


def fit_temperature(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray) -> float:
    """Temperature T minimising the log loss of softmax(log p / T) (multiclass Platt scaling)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(proba, 1e-12, 1.0))
    yi = np.searchsorted(classes, y_true)

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(yi)), yi]))

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def apply_temperature(proba: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, 1.0)) / t
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def grid(**axes: Sequence) -> list[dict]:
    """``grid(C=[.1, 1])`` -> ``[{"C": .1}, {"C": 1}]`` (the cartesian product of the axes)."""
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))] or [{}]


def _predict(model: Any, X: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities aligned to ``classes``, NaN for models without probabilities)."""
    if hasattr(model, "predict_proba"):
        p = model.predict_proba(X)
        out = np.zeros((len(p), len(classes)))
        for j, c in enumerate(model.classes_):
            out[:, list(classes).index(c)] = p[:, j]
        return classes[out.argmax(axis=1)], out
    pred = np.asarray(model.predict(X))
    return pred, np.full((len(pred), len(classes)), np.nan)


def inner_select(X: np.ndarray, y: np.ndarray, groups: np.ndarray, factory: Factory, points: list[dict], k: int,
                 seed: int, classes: np.ndarray, fit_y: np.ndarray) -> tuple[dict, float, np.ndarray]:
    """(best grid point, its pooled inner out-of-fold macro-F1, its inner out-of-fold probabilities)."""
    folds = group_kfold(y, groups, k, seed)
    best: tuple[float, dict, np.ndarray] = (-np.inf, points[0], np.zeros(0))
    for params in points:
        pred, proba = np.empty(len(y), dtype=y.dtype), np.zeros((len(y), len(classes)))
        for tr, te in folds:
            pred[te], proba[te] = _predict(factory(**params).fit(X[tr], fit_y[tr]), X[te], classes)
        s = macro_f1(y, pred)
        if s > best[0]:
            best = (s, params, proba)
    return best[1], best[0], best[2]


@dataclass
class NestedResult:
    """Out-of-fold predictions of every repeat and what was chosen where."""

    classes: np.ndarray
    y: np.ndarray
    pred: np.ndarray  # (repeats, n)
    proba: np.ndarray  # (repeats, n, C); NaN for models without probabilities
    proba_cal: np.ndarray  # the same after each fold's inner-fit temperature
    fold_f1: list[float] = field(default_factory=list)
    chosen: list[dict] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score

        f1 = np.array([macro_f1(self.y, p) for p in self.pred])
        acc = np.array([accuracy_score(self.y, p) for p in self.pred])
        folds = np.asarray(self.fold_f1)
        has_p = not np.isnan(self.proba).any()
        half = 1.96 * folds.std(ddof=1) / np.sqrt(len(folds)) if len(folds) > 1 else float("nan")
        out = {"f1": float(f1.mean()), "f1_sd_repeats": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
               "f1_sd_folds": float(folds.std(ddof=1)) if len(folds) > 1 else 0.0,
               "f1_ci95": [float(folds.mean() - half), float(folds.mean() + half)],
               "accuracy": float(acc.mean()), "repeats": len(f1), "folds": len(folds),
               "choices": dict(Counter(", ".join(f"{k}={v}" for k, v in sorted(c.items())) or "-"
                                       for c in self.chosen).most_common())}
        if has_p:
            out["ece"] = float(np.mean([ece(p, self.y, self.classes) for p in self.proba]))
            if self.temperatures:
                out["ece_calibrated"] = float(np.mean([ece(p, self.y, self.classes) for p in self.proba_cal]))
                out["temperature_median"] = float(np.median(self.temperatures))
        return out


def nested_cv(X: np.ndarray, y: np.ndarray | Sequence, groups: np.ndarray | Sequence, factory: Factory, points: list[dict], outer: int = 5,
              inner: int = 4, seeds: Sequence[int] = (0, 1, 2, 3, 4), fit_y: np.ndarray | None = None,
              progress: Callable[[str], None] | None = None) -> NestedResult:
    """Repeated nested CV of ``factory(**point)`` over ``points`` (see the module docstring).

    ``fit_y``: what the model is fit on when it is not the class label ``y`` it is scored on
    (e.g. ``(n, 2)`` valence/arousal for a quadrant-from-signs regressor)."""
    y, groups = np.asarray(y), np.asarray(groups)
    classes = np.unique(y)
    fy = y if fit_y is None else np.asarray(fit_y)
    shape = (len(seeds), len(y), len(classes))
    res = NestedResult(classes, y, np.empty((len(seeds), len(y)), dtype=y.dtype), np.full(shape, np.nan),
                       np.full(shape, np.nan))
    for r, seed in enumerate(seeds):
        for f, (tr, te) in enumerate(group_kfold(y, groups, outer, seed)):
            if len(points) > 1:
                params, _, inner_proba = inner_select(X[tr], y[tr], groups[tr], factory, points, inner,
                                                      1000 * seed + f + 1, classes, fy[tr])
            else:
                params, inner_proba = points[0], None
            res.pred[r, te], res.proba[r, te] = _predict(factory(**params).fit(X[tr], fy[tr]), X[te], classes)
            if inner_proba is not None and not np.isnan(res.proba[r, te]).any():
                t = fit_temperature(inner_proba, y[tr], classes)
                res.temperatures.append(t)
                res.proba_cal[r, te] = apply_temperature(res.proba[r, te], t)
            res.fold_f1.append(macro_f1(y[te], res.pred[r, te]))
            res.chosen.append(params)
            if progress:
                progress(f"seed {seed} fold {f}: macro-F1 {res.fold_f1[-1]:.3f} {params}")
    return res


def select(X: np.ndarray, y: np.ndarray, groups: np.ndarray, factory: Factory, points: list[dict], k: int = 4,
           seed: int = 0, fit_y: np.ndarray | None = None) -> tuple[dict, float]:
    """The model to ship: the same inner procedure on all data -> (grid point, temperature)."""
    y = np.asarray(y)
    classes = np.unique(y)
    fy = y if fit_y is None else np.asarray(fit_y)
    params, _, proba = inner_select(X, y, np.asarray(groups), factory, points, k, seed, classes, fy)
    t = fit_temperature(proba, y, classes) if not np.isnan(proba).any() else 1.0
    return params, t
