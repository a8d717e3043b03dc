"""The mood-word tagger: one calibrated probability per AllMusic mood word, from a clip's embedding.

AllMusic's editors gave each 4Q song several mood words (``MoodsStr``: 209 distinct words on
the 600 dev clips, about 6 per song). Those tags are editorial and sparse: a word that is
absent is "not chosen by the editor", not "does not apply", so the scores below (ROC-AUC,
PR-AUC, Brier) measure how well a model ranks and predicts the editors' choices.

Model (:class:`MoodTagger`, fit by :func:`fit_tagger`), for each word ``w`` of the vocabulary:

- a **tagger** score ``s_w = z . beta_w + b_w``: ridge regression from the standardised
  clip vector ``z`` (the default's mean+sd embedding) to the 0/1 indicators of all words at
  once (one shared ``alpha``, chosen by artist-grouped inner CV), turned into a probability by
  Platt scaling (``sigmoid(a_w s_w + c_w)``, fit on out-of-fold scores);
- a **quadrant mixture** ``m_w = sum_q P(q | clip) P(w | q)``: the model's quadrant
  probabilities times how often editors gave ``w`` to songs of each quadrant (smoothed);
- the **blend** ``p_w = lam_w * tagger + (1 - lam_w) * m_w``, ``lam_w`` in {0, .25, .5, .75,
  1} chosen per word by out-of-fold log-loss.

Everything is numpy (sklearn only for the group splitter), so a fitted tagger is a handful of
arrays that :class:`mer.models.blocks.MoodHead` carries inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: a word needs this many clips to be learned: with 5 artist-grouped outer folds each test
#: fold then holds about 5 songs with the word (fewer makes its PR-AUC noise), and each inner
#: training part about 15
MIN_CLIPS = 25
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
ALPHAS = (30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
SMOOTH = 2.0  # pseudo-clips of the word's overall rate added to each quadrant's count


def words_of(text: str) -> list[str]:
    """``"Cathartic; Fiery; Calm/Peaceful"`` -> ``["cathartic", "fiery", "calm/peaceful"]``."""
    return [w.strip().lower() for w in (text or "").split(";") if w.strip()]


def vocabulary(lists: list[list[str]], min_clips: int = MIN_CLIPS) -> list[str]:
    """The words given to at least ``min_clips`` clips, most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for ws in lists:
        for w in set(ws):
            counts[w] = counts.get(w, 0) + 1
    return sorted((w for w, n in counts.items() if n >= min_clips), key=lambda w: (-counts[w], w))


def indicators(lists: list[list[str]], vocab: list[str]) -> np.ndarray:
    """(N, W) 0/1: whether clip n carries word w."""
    index = {w: i for i, w in enumerate(vocab)}
    y = np.zeros((len(lists), len(vocab)), dtype=np.float64)
    for n, ws in enumerate(lists):
        for w in ws:
            if w in index:
                y[n, index[w]] = 1.0
    return y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def platt(scores: np.ndarray, y: np.ndarray, iters: int = 50, l2: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-column Platt scaling: (a, c) with ``sigmoid(a * s + c)`` fit to ``y`` by Newton's method
    (a little L2 on ``a`` keeps a word seen only in one fold finite). ``scores``, ``y``: (N, W)."""
    n, w = scores.shape
    mu, sd = scores.mean(axis=0), scores.std(axis=0) + 1e-12
    s = (scores - mu) / sd
    a, c = np.ones(w), np.log((y.mean(axis=0) + 1e-3) / (1 - y.mean(axis=0) + 1e-3))
    for _ in range(iters):
        p = _sigmoid(a * s + c)
        r, h = p - y, p * (1 - p) + 1e-9
        ga, gc = (r * s).sum(axis=0) + l2 * a, r.sum(axis=0)
        haa, hac, hcc = (h * s * s).sum(axis=0) + l2, (h * s).sum(axis=0), h.sum(axis=0)
        det = haa * hcc - hac * hac
        a, c = a - (hcc * ga - hac * gc) / det, c - (haa * gc - hac * ga) / det
    return a / sd, c - a * mu / sd


def log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-column mean binary log-loss."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=0)


class _Ridge:
    """Multi-output ridge for several alphas at once (one SVD of the standardised inputs)."""

    def __init__(self, z: np.ndarray, y: np.ndarray) -> None:
        self.u, self.s, self.vt = np.linalg.svd(z, full_matrices=False)
        self.ym = y.mean(axis=0)
        self.uty = self.u.T @ (y - self.ym)

    def coef(self, alpha: float) -> np.ndarray:
        """(D, W) coefficients; the intercept is ``self.ym``."""
        return self.vt.T @ ((self.s / (self.s ** 2 + alpha))[:, None] * self.uty)


def _folds(groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    relabel = dict(zip(names, rng.permutation(len(names))))  # a seeded shuffle of whole artists
    g = np.array([relabel[x] for x in groups])
    return list(GroupKFold(n_splits=k).split(np.zeros(len(g)), groups=g))


def quadrant_lr(z: np.ndarray, q: np.ndarray, C: float = 0.01) -> Any:
    """The default's quadrant probe on standardised clip vectors: multinomial LR (its C)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=5000).fit(z, q)


def mixture_table(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(4, W) ``P(word | quadrant)`` from training indicators, smoothed toward each word's rate."""
    rate = y.mean(axis=0)
    rows = []
    for name in ("Q1", "Q2", "Q3", "Q4"):
        sel = q == name
        rows.append((y[sel].sum(axis=0) + SMOOTH * rate) / (sel.sum() + SMOOTH))
    return np.asarray(rows)


@dataclass
class MoodTagger:
    """A fitted tagger (see the module docstring); all arrays are float64.

    ``mean``, ``scale``: (D,) standardisation of the clip vector; ``coef`` (D, W) and
    ``intercept`` (W,): the ridge scores; ``a``, ``c`` (W,): Platt; ``mixture`` (4, W):
    ``P(word | Q1..Q4)``; ``blend`` (W,): the tagger's weight; ``alpha``: the ridge penalty."""

    words: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    a: np.ndarray
    c: np.ndarray
    mixture: np.ndarray
    blend: np.ndarray
    alpha: float

    def tagger(self, x: np.ndarray) -> np.ndarray:
        """(N, W) Platt-calibrated ridge probabilities of clip vectors ``x`` (N, D)."""
        s = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return _sigmoid(self.a * s + self.c)

    def predict(self, x: np.ndarray, pq: np.ndarray) -> np.ndarray:
        """(N, W) probabilities from clip vectors (N, D) and quadrant probabilities ``pq`` (N, 4)."""
        return self.blend * self.tagger(x) + (1 - self.blend) * (pq @ self.mixture)


def fit_tagger(x: np.ndarray, y: np.ndarray, q: np.ndarray, groups: np.ndarray, words: list[str],
               pq_oof: np.ndarray | None = None, inner: int = 4, seed: int = 0,
               blends: tuple[float, ...] = BLENDS) -> MoodTagger:
    """Fit the tagger on clip vectors ``x`` (N, D), word indicators ``y`` (N, W), quadrants ``q``
    (N,) and artists ``groups`` (N,), choosing alpha, Platt and the blend by ``inner``-fold
    artist-grouped CV. ``pq_oof``: out-of-fold quadrant probabilities of these clips for the blend
    (None: computed here with :func:`quadrant_lr`); ``blends=(1.0,)`` fits the tagger alone."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    z = (x - mean) / scale
    folds = _folds(groups, inner, seed)
    oof = {a: np.zeros_like(y) for a in ALPHAS}
    pq = np.zeros((len(x), 4)) if pq_oof is None else pq_oof
    for tr, te in folds:
        r = _Ridge(z[tr], y[tr])
        for alpha in ALPHAS:
            oof[alpha][te] = z[te] @ r.coef(alpha) + r.ym
        if pq_oof is None and len(blends) > 1:
            pq[te] = quadrant_lr(z[tr], q[tr]).predict_proba(z[te])
    losses = {}
    for alpha in ALPHAS:
        a, c = platt(oof[alpha], y)
        losses[alpha] = float(log_loss(_sigmoid(a * oof[alpha] + c), y).mean())
    alpha = min(losses, key=losses.__getitem__)
    a, c = platt(oof[alpha], y)
    tag_oof = _sigmoid(a * oof[alpha] + c)
    mix_oof = np.zeros_like(y)
    for tr, te in folds:
        mix_oof[te] = pq[te] @ mixture_table(y[tr], q[tr])
    loss = np.stack([log_loss(lam * tag_oof + (1 - lam) * mix_oof, y) for lam in blends])  # (L, W)
    blend = np.asarray(blends)[loss.argmin(axis=0)]
    r = _Ridge(z, y)
    return MoodTagger(list(words), mean, scale, r.coef(alpha), r.ym, a, c, mixture_table(y, q), blend, alpha)


# ------------------------------------------------------------------ nested evaluation
def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over every (clip, word) pair: the mean |probability - rate|
    over ``bins`` equal-width probability bins, weighted by their share of pairs."""
    p, y = p.ravel(), y.ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def scores(p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-word ROC-AUC, PR-AUC (average precision) and Brier score (W,) of probabilities ``p``,
    and the pooled calibration error (``ece``, an array of one)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    w = y.shape[1]
    roc = np.array([roc_auc_score(y[:, j], p[:, j]) for j in range(w)])
    pr = np.array([average_precision_score(y[:, j], p[:, j]) for j in range(w)])
    brier = ((p - y) ** 2).mean(axis=0)
    return {"roc_auc": roc, "pr_auc": pr, "brier": brier, "ece": np.array([ece(p, y)])}


def lexicon_points(words: list[str], lexicon: dict[str, tuple[float, float]]) -> np.ndarray:
    """(W, 2) canonical valence/arousal of each word from the lexicon (``calm/peaceful``: the
    mean of its parts found there); NaN where no part is in it."""
    out = np.full((len(words), 2), np.nan)
    for i, w in enumerate(words):
        found = [lexicon[p.strip()] for p in w.replace("-", "/").split("/") if p.strip() in lexicon]
        if found:
            out[i] = np.mean(found, axis=0)
    return out


def nested(x: np.ndarray, y: np.ndarray, q: np.ndarray, groups: np.ndarray, va: np.ndarray,
           points: np.ndarray, words: list[str], outer: int = 5, seeds: tuple[int, ...] = (0, 1, 2),
           progress: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Out-of-fold probabilities of every method over ``outer`` artist-grouped folds for each seed,
    scored per word and averaged over seeds: ``{method: {metric: (W,)}}``. Methods: ``prior``
    (training rate), ``lexicon`` (minus the distance from a ridge valence/arousal prediction to
    the word's lexicon point; ``va``: the clips' lexicon labels, ``points``: :func:`lexicon_points`),
    ``mixture`` (quadrant LR x P(word|q)), ``tagger`` (ridge + Platt alone) and ``blend`` (shipped
    form). Nothing of a test fold is used to fit or choose anything scored on it."""
    out: dict[str, list[dict[str, np.ndarray]]] = {}
    for seed in seeds:
        preds = {m: np.zeros_like(y) for m in ("prior", "lexicon", "mixture", "tagger", "blend")}
        for k, (tr, te) in enumerate(_folds(groups, outer, 100 + seed)):
            mean, scale = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-8
            ztr, zte = (x[tr] - mean) / scale, (x[te] - mean) / scale
            preds["prior"][te] = y[tr].mean(axis=0)
            ok = ~np.isnan(va[tr]).any(axis=1)
            r = _Ridge(ztr[ok], va[tr][ok])
            v = zte @ r.coef(100.0) + r.ym  # (n, 2): the default's va_alpha
            d = np.linalg.norm(v[:, None, :] - np.nan_to_num(points)[None], axis=2)
            preds["lexicon"][te] = np.where(np.isnan(points[:, 0])[None], 0.0, -d)
            pq = quadrant_lr(ztr, q[tr]).predict_proba(zte)
            preds["mixture"][te] = pq @ mixture_table(y[tr], q[tr])
            tagger = fit_tagger(x[tr], y[tr], q[tr], groups[tr], words, seed=seed)
            preds["tagger"][te] = tagger.tagger(x[te])
            preds["blend"][te] = tagger.predict(x[te], pq)
            if progress:
                print(f"  seed {seed} fold {k}: alpha {tagger.alpha:g}, mean blend {tagger.blend.mean():.2f}",
                      flush=True)
        for m, p in preds.items():
            out.setdefault(m, []).append(scores(p, y))
    return {m: {k: np.mean([s[k] for s in runs], axis=0) for k in runs[0]} for m, runs in out.items()}


# ------------------------------------------------------------------ shipping
def head_params(t: MoodTagger) -> dict[str, np.ndarray]:
    """The :class:`mer.models.blocks.MoodHead` tensors of a fitted tagger: standardisation and
    Platt scaling folded into one linear layer (``score``), plus ``blend`` and ``mixture``."""
    weight = (t.coef / t.scale[:, None]) * t.a[None, :]  # (D, W)
    bias = t.a * (t.intercept - (t.mean / t.scale) @ t.coef) + t.c
    return {"score.weight": weight.T, "score.bias": bias, "blend": t.blend, "mixture": t.mixture}


def attach(stem: str, tagger: MoodTagger, out: str, version: str, extra: dict[str, Any] | None = None) -> Any:
    """Write checkpoint ``out`` (``out.safetensors`` + ``out.json``): the musicnn checkpoint
    ``stem`` with ``tagger`` as its mood-word head (every other weight as it was), as model
    version ``version``; ``extra`` goes into its JSON (``moods``: the vocabulary's support and
    nested scores). Returns the weights path. Export its ONNX graphs with ``mer export --runtime``."""
    import torch

    from ..models import create_model
    from ..models.checkpoint import load_checkpoint, save_checkpoint

    old, meta = load_checkpoint(stem)
    args = {**meta.model_args, "mood_words": list(tagger.words)}
    model = create_model(meta.model, feature=meta.feature, **args)
    missing, unexpected = model.load_state_dict(old.state_dict(), strict=False)
    if unexpected or any(not k.startswith("heads.moods.") for k in missing):
        raise RuntimeError(f"{stem}: its weights do not fit a mood-word head ({missing or unexpected})")
    head = model.heads.moods
    with torch.no_grad():
        for name, value in head_params(tagger).items():
            dict(head.named_parameters(), **dict(head.named_buffers()))[name].copy_(
                torch.as_tensor(value, dtype=torch.float32))
    keep = {k: v for k, v in meta.to_dict().items() if k not in ("model", "model_args", "feature", "format",
                                                                  "capabilities", "versions")}
    return save_checkpoint(model.eval(), out, **{**keep, "model_version": version, **(extra or {})})
