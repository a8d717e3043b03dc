"""Linear probes on a frozen backbone, chosen by nested CV: ``mer benchmark`` with ``candidates``.

A probe benchmark YAML names a dataset, a frozen backbone (musicnn), the protocol and a list
of candidates; each candidate is clip features x a model x a grid::

    out: runs/nested-4q
    dataset: 4q
    root: ../shared/data/4q-dev
    dataset_options: {lexicon: ../shared/data/lexicons/Ratings_Warriner_et_al.csv}
    backbone: {model: musicnn, model_args: {source: msd}}
    protocol: {outer: 5, inner: 4, seeds: [0, 1, 2, 3, 4]}
    tried_before: 29          # variants compared on these clips before this file (the ledger)
    candidates:
      - {label: constant, model: constant, baseline: true}
      - {label: LR on embedding mean, features: mean, model: lr, grid: {C: [0.01, 0.1, 1]}, baseline: true}
      - {label: LR on mean+sd, loudness-normalised, features: meanstd, level: 0.139, model: lr,
         grid: {C: [0.003, 0.01, 0.03, 0.1]}}
    ship: {va_alpha: [1, 10, 100, 1000]}

Features: ``mean`` / ``meanstd`` (mean, and standard deviation, over the 0.5 s steps of the
backbone's per-step embedding), ``classic`` (62 hand-crafted log-mel statistics: the
classical-features baseline). ``level``: the loudness normalisation of
:attr:`mer.features.FeatureConfig.level`. Models: ``lr`` (standardise + multinomial logistic
regression), ``ridge_va`` (ridge on valence/arousal, quadrant from the signs), ``constant``
(the majority class).

With ``ship``, the best candidate by nested estimate among the non-baseline ``lr`` ones is
fit on all clips with the same inner procedure (C and a temperature by grouped CV), plus a
ridge valence/arousal head (alpha by grouped CV), and written as a mer checkpoint
(``OUT/model``): a musicnn with a quadrant head whose weights are the probe's, standardisation
and temperature folded in. Nothing of the outer folds leaks into it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import load_dataset
from ..datasets.items import load_items
from ..errors import ConfigError
from ..features import FeatureConfig
from ..hf_hub import HF_PREFIX
from ..io import write_json_atomic, write_text_atomic
from .config import read_yaml
from .nested import grid, nested_cv, reliability, select

QUADRANTS = np.array(["Q1", "Q2", "Q3", "Q4"])


# ------------------------------------------------------------------ clip features
def pool(seqs: list[np.ndarray], how: str) -> np.ndarray:
    """Per-step embeddings ``(n_i, D)`` -> clip vectors: ``mean`` (D) or ``meanstd`` (2D)."""
    rows = []
    for s in seqs:
        m = s.mean(axis=0)
        rows.append(np.concatenate([m, np.sqrt(((s - m) ** 2).mean(axis=0) + 1e-8)]) if how == "meanstd" else m)
    return np.asarray(rows, dtype=np.float64)


def classic(x: np.ndarray, n_mfcc: int = 20, bands: int = 8) -> np.ndarray:
    """62 classical statistics of log-mel features ``(C, F, T)``: MFCC-like cepstra (DCT-II of
    the log-mel frames) mean and sd, band energies mean and sd, spectral flux, frame energy
    and mel centroid mean and sd."""
    lm = x.mean(axis=0)  # (F, T)
    f = lm.shape[0]
    k = np.arange(f)
    dct = np.cos(np.pi / f * (k[None, :] + 0.5) * np.arange(n_mfcc)[:, None])  # (n_mfcc, F)
    cep = dct @ lm
    band = np.stack([b.mean(axis=0) for b in np.array_split(lm, bands, axis=0)])
    flux = np.abs(np.diff(lm, axis=1)).mean(axis=0) if lm.shape[1] > 1 else np.zeros(1)
    energy = lm.mean(axis=0)
    w = np.maximum(lm, 0) + 1e-8
    centroid = (k[:, None] * w).sum(axis=0) / w.sum(axis=0)
    parts = [cep, band, flux[None], energy[None], centroid[None]]
    return np.concatenate([np.r_[p.mean(axis=1), p.std(axis=1)] for p in parts])


# ------------------------------------------------------------------ models
def make_model(kind: str, **params: Any) -> Any:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(C=params.get("C", 1.0), max_iter=5000))
    if kind == "ridge_va":
        return SignQuadrant(make_pipeline(StandardScaler(), Ridge(alpha=params.get("alpha", 1.0))))
    if kind == "constant":
        return DummyClassifier(strategy="most_frequent")
    raise ConfigError(f"unknown probe model {kind!r}; choose lr, ridge_va or constant")


class SignQuadrant:
    """A (valence, arousal) regressor whose class is the quadrant of its prediction's signs."""

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def fit(self, X: np.ndarray, va: np.ndarray) -> "SignQuadrant":
        self.regressor.fit(X, va)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        va = self.regressor.predict(X)
        v, a = va[:, 0] >= 0, va[:, 1] >= 0
        return np.where(a, np.where(v, "Q1", "Q2"), np.where(v, "Q4", "Q3"))


# ------------------------------------------------------------------ data
class ProbeData:
    """Labels, artists and (cached) clip features of a dataset, per feature level."""

    def __init__(self, doc: dict[str, Any], workers: int = 0, progress: bool = True) -> None:
        ds = load_dataset(doc["dataset"], doc["root"], **(doc.get("dataset_options") or {}))
        self.ds = ds
        self.tracks = [t for t in ds.tracks(with_audio=True) if t.quadrant]
        if len(self.tracks) < 20:
            raise ConfigError(f"{doc['dataset']} at {doc['root']}: {len(self.tracks)} clips with quadrant labels; "
                              "a nested estimate needs a quadrant-labelled dataset (4q)")
        self.y = np.array([t.quadrant for t in self.tracks])
        self.groups = np.array([t.artist or t.track_id for t in self.tracks])
        self.va = np.array([t.static if t.static is not None else (np.nan, np.nan) for t in self.tracks])
        self.backbone = doc.get("backbone") or {"model": "musicnn"}
        self.workers, self.progress = workers, progress
        self._items: dict[Any, list] = {}
        self._seqs: dict[Any, list[np.ndarray]] = {}

    def items(self, level: float | None, feature: FeatureConfig | None = None) -> list:
        """The clips' features (default: the log-mel front-end) at loudness ``level``."""
        feature = dataclasses.replace(feature or FeatureConfig(), level=level)
        if feature not in self._items:
            self._items[feature] = load_items(self.tracks, feature, workers=self.workers, progress=self.progress)
        return self._items[feature]

    def backbone_model(self, level: float | None, **kw: Any) -> Any:
        """The backbone (musicnn, or an hf: encoder with its own front-end) at loudness ``level``."""
        from ..models import create_model

        return create_model(self.backbone["model"], feature=FeatureConfig(level=level),
                            **{**(self.backbone.get("model_args") or {}), **kw})

    def seqs(self, level: float | None) -> list[np.ndarray]:
        """Per-step embeddings of the backbone (cached on disk as training caches them)."""
        if level not in self._seqs:
            from .data import embed_items

            model = self.backbone_model(level)
            items = self.items(level, model.feature)
            self._seqs[level] = [it.x for it in embed_items(model, items, progress=self.progress)]
        return self._seqs[level]

    def features(self, kind: str, level: float | None) -> np.ndarray:
        if kind == "classic":
            return np.asarray([classic(it.x) for it in self.items(level)])
        if kind in ("mean", "meanstd"):
            return pool(self.seqs(level), kind)
        raise ConfigError(f"unknown probe features {kind!r}; choose mean, meanstd or classic")


# ------------------------------------------------------------------ the benchmark
def run_probes(path: str | os.PathLike, out: str | None = None, workers: int = 0, progress: bool = True,
               backbone: dict[str, Any] | None = None) -> str:
    """Run the nested benchmark of a probe YAML (module docstring); return the markdown table.
    ``backbone`` (``{"model": "hf:DIR", "model_args": {...}}``, ``mer benchmark --model``)
    replaces the YAML's; its results then go to ``OUT-<backbone>`` unless ``out`` is given."""
    doc = read_yaml(path)
    if backbone:
        doc["backbone"] = backbone
        if not out:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(backbone["model"].removeprefix(HF_PREFIX)).name or "backbone")
            out = f"{doc.get('out') or 'runs/probes'}-{slug}"
    unknown = set(doc) - {"out", "dataset", "root", "dataset_options", "backbone", "protocol", "candidates", "ship",
                          "tried_before"}
    if unknown or not doc.get("candidates"):
        raise ConfigError(f"{path}: a probe benchmark needs 'candidates' (unknown keys: {sorted(unknown) or 'none'})")
    base = Path(out or doc.get("out") or "runs/probes")
    proto = {"outer": 5, "inner": 4, "seeds": [0, 1, 2, 3, 4], **(doc.get("protocol") or {})}
    data = ProbeData(doc, workers, progress)
    results = _load(base / "nested.json")
    for cand in doc["candidates"]:
        label = cand["label"]
        if label in results:  # resumable: finished candidates are read back
            continue
        kind = cand.get("model", "lr")
        X = np.zeros((len(data.y), 1)) if kind == "constant" else data.features(cand.get("features", "mean"),
                                                                                  cand.get("level"))
        fit_y = data.va if kind == "ridge_va" else None
        if progress:
            print(f"== {label}", flush=True)
        res = nested_cv(X, data.y, data.groups, lambda **p: make_model(kind, **p), grid(**(cand.get("grid") or {})),
                        proto["outer"], proto["inner"], proto["seeds"], fit_y)
        summary = res.summary()
        if not np.isnan(res.proba_cal).any():
            summary["reliability"] = reliability(res.proba_cal.reshape(-1, 4), np.tile(res.y, len(res.pred)),
                                                 res.classes)
        results[label] = {**cand, **summary}
        write_json_atomic(base / "nested.json", results)
    table = format_probes(results, doc, len(data.y), proto)
    if doc.get("ship"):
        best = ship(doc, data, results, proto, base / "model")
        table += f"\n\nshipped: {best} (fit on all {len(data.y)} clips) -> {base / 'model'}.safetensors"
        if "reliability" in results[best]:
            plot_reliability(results[best]["reliability"], base / "reliability.png", best)
    write_text_atomic(base / "benchmark.md", table + "\n")
    return table


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def format_probes(results: dict[str, Any], doc: dict[str, Any], n: int, proto: dict) -> str:
    tried = len(results) + int(doc.get("tried_before", 0))
    lines = [f"### {doc['dataset']}: nested CV, {proto['outer']} outer x {proto['inner']} inner folds (artist-grouped, "
             f"quadrant-stratified), {len(proto['seeds'])} split seeds, {n} clips", "",
             f"Variants compared on these clips: {len(results)} here + {doc.get('tried_before', 0)} before = {tried}.",
             "", "| candidate | nested macro-F1 (mean ± sd over repeats) | sd over folds | 95% CI | accuracy | "
             "ECE raw / calibrated | chosen inside (outer folds) |", "|---|---|---|---|---|---|---|"]
    for label, r in sorted(results.items(), key=lambda kv: -kv[1]["f1"]):
        ci = r["f1_ci95"]
        cal = f"{_fmt(r.get('ece'))} / {_fmt(r.get('ece_calibrated'))}" if "ece" in r else "n/a"
        choices = "; ".join(f"{k}: {v}" for k, v in list(r["choices"].items())[:3])
        mark = " (baseline)" if r.get("baseline") else ""
        lines.append(f"| {label}{mark} | {r['f1']:.3f} ± {r['f1_sd_repeats']:.3f} | {r['f1_sd_folds']:.3f} | "
                     f"{ci[0]:.3f}-{ci[1]:.3f} | {r['accuracy']:.3f} | {cal} | {choices} |")
    return "\n".join(lines)


def plot_reliability(bins: list, out: Path, title: str) -> None:
    """Reliability diagram (accuracy against confidence per bin, with the clip counts) as a PNG;
    skipped when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    centre, conf, acc, count = (np.array(c) for c in zip(*bins))
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, label="perfect calibration")
    ax.bar(centre, acc, width=0.09, alpha=0.6, label="accuracy in bin")
    ax.plot(conf, acc, "o-", ms=3, label="(confidence, accuracy)")
    for c, a, k in zip(centre, acc, count):
        ax.annotate(str(k), (c, a), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=6)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence of the top quadrant", ylabel="accuracy",
           title=f"reliability (nested CV, calibrated)\n{title}")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


# ------------------------------------------------------------------ the shipped model
def ship(doc: dict[str, Any], data: ProbeData, results: dict[str, Any], proto: dict, out: Path) -> str:
    """Fit the best non-baseline ``lr`` candidate on all clips and save it as a mer checkpoint."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..models.checkpoint import save_checkpoint

    pool_ = [r for r in results.values() if not r.get("baseline") and r.get("model", "lr") == "lr"]
    if not pool_:
        raise ConfigError("ship: no non-baseline lr candidate to ship")
    best = max(pool_, key=lambda r: r["f1"])
    level, feats = best.get("level"), best.get("features", "mean")
    X = data.features(feats, level)
    params, temperature = select(X, data.y, data.groups, lambda **p: make_model("lr", **p),
                                 grid(**(best.get("grid") or {})), proto["inner"])
    clf = make_model("lr", **params).fit(X, data.y)
    # valence/arousal: ridge on the mean embedding, alpha by grouped CV (mean R2 of both)
    Xm, ok = pool(data.seqs(level), "mean"), np.isfinite(data.va).all(axis=1)
    alphas = (doc.get("ship") or {}).get("va_alpha", [1, 10, 100, 1000])
    folds = list(GroupKFold(n_splits=proto["inner"]).split(Xm[ok], groups=data.groups[ok]))

    def cv_r2(alpha: float) -> float:
        pred = np.zeros_like(data.va[ok])
        for tr, te in folds:
            pred[te] = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(Xm[ok][tr], data.va[ok][tr]).predict(
                Xm[ok][te])
        y = data.va[ok]
        return float(np.mean(1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)))

    r2 = {a: cv_r2(a) for a in alphas}
    alpha = max(r2, key=r2.__getitem__)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(Xm[ok], data.va[ok])
    model = data.backbone_model(level, quadrant=True)
    set_probe_weights(model, clf, reg, temperature, feats)
    ids = sorted(t.track_id for t in data.tracks)
    save_checkpoint(model, out, dataset=doc["dataset"], dataset_root=str(Path(doc["root"]).resolve()), split="all",
                    task="static", training={"dataset": data.ds.name, "root": str(Path(doc["root"]).resolve()),
                                             "id_space": data.ds.space, "fingerprint": data.ds.fingerprint(),
                                             "ids": ids},
                    probe={"candidate": best["label"], "features": feats, "level": level, "C": params.get("C"),
                           "temperature": temperature, "va_alpha": alpha, "va_cv_r2": r2},
                    nested={k: best[k] for k in ("f1", "f1_sd_repeats", "f1_sd_folds", "f1_ci95", "accuracy", "ece",
                                                 "ece_calibrated") if k in best},
                    tried=len(results) + int(doc.get("tried_before", 0)))
    return best["label"]


def set_probe_weights(model: Any, clf: Any, reg: Any, temperature: float, features: str) -> None:
    """Fold ``StandardScaler -> LogisticRegression`` (and the temperature) into the model's
    quadrant layer, and ``StandardScaler -> Ridge`` into its static and per-step layers."""
    import torch

    scaler, lr = clf.steps[0][1], clf.steps[-1][1]
    if list(lr.classes_) != list(QUADRANTS):
        raise ConfigError(f"the probe's classes {list(lr.classes_)} are not Q1..Q4")
    w = lr.coef_ / scaler.scale_ / temperature  # (4, d)
    b = (lr.intercept_ - (lr.coef_ * scaler.mean_ / scaler.scale_).sum(axis=1)) / temperature
    heads = model.heads
    d = heads.quadrant.in_features // 2
    full = np.zeros((4, 2 * d))
    full[:, : w.shape[1]] = w  # features "mean": the sd half of the layer stays zero
    if features == "meanstd" and w.shape[1] != 2 * d or features == "mean" and w.shape[1] != d:
        raise ConfigError(f"probe features {features!r} do not match the head's input ({w.shape[1]} vs {d})")
    s, r = reg.steps[0][1], reg.steps[-1][1]
    rw = r.coef_ / s.scale_  # (2, d)
    rb = r.intercept_ - (r.coef_ * s.mean_ / s.scale_).sum(axis=1)
    with torch.no_grad():
        heads.quadrant.weight.copy_(torch.as_tensor(full, dtype=torch.float32))
        heads.quadrant.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        for layer in (heads.static, heads.dynamic):
            layer.weight.copy_(torch.as_tensor(rw, dtype=torch.float32))
            layer.bias.copy_(torch.as_tensor(rb, dtype=torch.float32))
