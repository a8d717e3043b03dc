"""Scoring predictions against dataset labels, the way the literature reports them.

- static, per dimension: RMSE, Pearson r, R², CCC;
- dynamic: per-song RMSE and r as mean +/- sd over songs (MediaEval's way) and pooled over
  all labelled steps;
- quadrants, where the dataset labels them: accuracy and macro-F1 of the reported quadrant
  (a quadrant head's most probable one, else the quadrant of the predicted valence and
  arousal) against the labelled one.

:func:`score` returns a flat-ish dict (JSON-ready); :func:`format_report` a readable table.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from .. import metrics
from ..datasets.items import Item
from ..scales import quadrant_index

DIMS = ("valence", "arousal")


def score(items: Sequence[Item], static_pred: np.ndarray, dynamic_pred: Sequence[np.ndarray] | None = None,
          quadrant_pred: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of predictions against ``items``' labels. ``quadrant_pred`` (1..4 per item): the
    quadrants the model reports (:func:`mer.infer.inference.stack` gives them: a quadrant
    head's most probable one); without it, the quadrant of each static prediction's signs."""
    out: dict[str, Any] = {"n": len(items)}
    has_static = np.array([it.static is not None for it in items], dtype=bool)
    if has_static.sum() >= 2:
        y = np.stack([it.static for it in items if it.static is not None])
        p = np.asarray(static_pred)[has_static]
        out["static"] = {d: metrics.regression_report(y[:, i], p[:, i]) for i, d in enumerate(DIMS)}
        out["static"]["n"] = int(has_static.sum())
    quads = np.array([it.quadrant for it in items])
    if (quads > 0).any():
        keep = quads > 0
        pred_q = np.asarray(quadrant_pred)[keep] if quadrant_pred is not None else \
            quadrant_index(np.asarray(static_pred)[keep, 0], np.asarray(static_pred)[keep, 1])
        out["quadrant"] = {"accuracy": metrics.accuracy(quads[keep], pred_q),
                           "macro_f1": metrics.macro_f1(quads[keep], pred_q), "n": int(keep.sum()),
                           "confusion": metrics.confusion_matrix(quads[keep], pred_q).tolist()}
    if dynamic_pred is not None:
        pairs = [(it.dynamic, p) for it, p in zip(items, dynamic_pred) if it.dynamic is not None]
        if pairs:
            out["dynamic"] = _dynamic(pairs)
    return out


def _dynamic(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for i, d in enumerate(DIMS):
        ys, ps = [], []
        for y, p in pairs:
            n = min(len(y), len(p))
            ok = np.isfinite(y[:n, i])
            if ok.sum() >= 2:
                ys.append(y[:n, i][ok])
                ps.append(p[:n, i][ok])
        if not ys:
            continue
        with warnings.catch_warnings():  # constant curves: left out of r, counted in n_r
            warnings.simplefilter("ignore", RuntimeWarning)
            r_mean, r_sd, n_r = metrics.per_song(metrics.pearson, ys, ps)
        rmse_mean, rmse_sd, _ = metrics.per_song(metrics.rmse, ys, ps)
        res[d] = {"rmse_mean": rmse_mean, "rmse_sd": rmse_sd, "r_mean": r_mean, "r_sd": r_sd, "n_r": n_r,
                  "pooled_rmse": metrics.pooled(metrics.rmse, ys, ps),
                  "pooled_r": metrics.pooled(metrics.pearson, ys, ps)}
    res["n_songs"] = len(pairs)
    return res


def constant_baseline(train: Sequence[Item], test: Sequence[Item]) -> dict[str, Any]:
    """Scores of predicting the training mean for every test clip (and every step)."""
    labelled = [it.static for it in train if it.static is not None]
    mean = np.mean(labelled, axis=0) if labelled else np.zeros(2)
    dyn = [it.dynamic for it in train if it.dynamic is not None]
    dmean = np.nanmean(np.concatenate(dyn), axis=0) if dyn else mean
    static_pred = np.tile(mean, (len(test), 1))
    dyn_pred = [np.tile(dmean, (len(it.dynamic) if it.dynamic is not None else 1, 1)) for it in test]
    return score(test, static_pred, dyn_pred)


def headline(s: dict) -> dict[str, float]:
    """The few numbers worth a column: r and CCC per dimension, quadrant macro-F1, dynamic r."""
    out: dict[str, float] = {}
    for d in DIMS:
        if "static" in s:
            out[f"{d}_r"] = s["static"][d]["pearson"]
            out[f"{d}_ccc"] = s["static"][d]["ccc"]
            out[f"{d}_rmse"] = s["static"][d]["rmse"]
        if "dynamic" in s and d in s["dynamic"]:
            out[f"{d}_dyn_r"] = s["dynamic"][d]["r_mean"]
            out[f"{d}_dyn_rmse"] = s["dynamic"][d]["rmse_mean"]
    if "quadrant" in s:
        out["quadrant_f1"] = s["quadrant"]["macro_f1"]
        out["quadrant_acc"] = s["quadrant"]["accuracy"]
    return out


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def format_report(result: dict[str, Any], ceiling: dict[str, Any] | None = None) -> str:
    """Readable tables of :func:`score` output (and an annotation ceiling, when known)."""
    lines = [f"clips scored: {result['n']}"]
    if "static" in result:
        lines += ["", "static        RMSE     r       R2      CCC"]
        for d in DIMS:
            m = result["static"][d]
            lines.append(f"  {d:<10} {_fmt(m['rmse']):>7} {_fmt(m['pearson']):>7} {_fmt(m['r2']):>7} {_fmt(m['ccc']):>7}")
    if "dynamic" in result:
        lines += ["", f"dynamic ({result['dynamic']['n_songs']} songs)   RMSE per song      r per song         "
                      "pooled RMSE  pooled r"]
        for d in DIMS:
            if d in result["dynamic"]:
                m = result["dynamic"][d]
                lines.append(f"  {d:<10} {_fmt(m['rmse_mean'])} +/- {_fmt(m['rmse_sd'])}    "
                             f"{_fmt(m['r_mean'])} +/- {_fmt(m['r_sd'])}    {_fmt(m['pooled_rmse']):>9}  "
                             f"{_fmt(m['pooled_r']):>8}")
    if "quadrant" in result:
        q = result["quadrant"]
        lines += ["", f"quadrants: accuracy {_fmt(q['accuracy'])}, macro-F1 {_fmt(q['macro_f1'])} ({q['n']} clips)",
                  "  confusion (rows true Q1..Q4, columns predicted):"]
        lines += ["    " + " ".join(f"{v:4d}" for v in row) for row in q["confusion"]]
    if ceiling:
        lines += ["", "annotation ceiling (agreement between rater halves, Spearman-Brown):"]
        lines += [f"  {k}: {_fmt(v) if isinstance(v, float) else v}" for k, v in ceiling.items()]
    return "\n".join(lines)
