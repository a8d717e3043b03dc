"""Do key and mode features help the default tell sad from calm? Nested CV, as the default's.

On the maintainers' held-out clips every system's worst error is valence at low arousal (39
of 75 sad Q3 clips called calm Q4). Mode (major / minor) is the classic audio cue for valence,
and musicnn, a tagger, is not built to see it. This adds 20 key-invariant tonal statistics of
the clip to the default's features (musicnn MSD mean+sd embedding of loudness-normalised
audio):

- librosa's chroma (CQT, 16 kHz mono), averaged over the clip;
- its correlations with the 24 Krumhansl-Kessler key profiles: the best major and the best
  minor correlation, their difference (mode), the best key's correlation (key clarity);
- the mean chroma rotated to the best key's tonic (12 values: which scale degrees sound);
- the chroma's entropy and its frame-to-frame change, mean and sd.

Scored with the default's repeated nested protocol (5 outer x 4 inner artist-grouped folds,
5 seeds; C chosen inside), beside the shipped candidate and the tonal features alone, in the
same process; then the 4 key/mode correlations alone appended, and a late fusion (the tonal
statistics' own LR, its out-of-fold log-probabilities appended to the embedding). Prints one markdown table; the tonal features are cached in
``~/.cache/mer/tonal.npz``.

Usage (from the repository root; needs the train extra, librosa and the data root, ``--data``)::

    python -m benchmarks.tonal_4q --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, REFERENCE, ProbabilityClassifier, header, load, row

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def tonal(y: np.ndarray, sr: int = 16000) -> np.ndarray:
    """20 key-invariant tonal statistics of mono ``y`` (module docstring)."""
    import librosa

    chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=512)  # (12, T), max-normalised per frame
    mean = chroma.mean(axis=1)

    def corr(profile: np.ndarray) -> np.ndarray:
        return np.array([np.corrcoef(mean, np.roll(profile, k))[0, 1] for k in range(12)])

    major, minor = corr(MAJOR), corr(MINOR)
    best_major, best_minor = major.max(), minor.max()
    tonic = int(major.argmax() if best_major >= best_minor else minor.argmax())
    rotated = np.roll(mean / (mean.sum() + 1e-9), -tonic)
    p = chroma / (chroma.sum(axis=0, keepdims=True) + 1e-9)
    entropy = -(p * np.log(p + 1e-9)).sum(axis=0)
    change = np.abs(np.diff(p, axis=1)).sum(axis=0) if p.shape[1] > 1 else np.zeros(1)
    return np.r_[best_major, best_minor, best_major - best_minor, max(best_major, best_minor), rotated,
                 entropy.mean(), entropy.std(), change.mean(), change.std()]


def features(tracks: list) -> np.ndarray:
    from mer import audio
    from mer.io import cache_root

    cache = cache_root() / "tonal.npz"
    ids = [t.track_id for t in tracks]
    if cache.is_file():
        with np.load(cache) as z:
            if list(z["ids"]) == ids:
                return z["x"]
    t0, rows = time.perf_counter(), []
    for i, t in enumerate(tracks):
        rows.append(tonal(audio.load(t.audio_path, sr=16000)[0]))
        if i % 100 == 99:
            print(f"  tonal: {i + 1}/{len(tracks)} clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    x = np.asarray(rows)
    np.savez(cache, ids=np.array(ids), x=x)
    return x


class TonalStack(ProbabilityClassifier):
    """Late fusion: a logistic regression on the tonal statistics alone, its out-of-fold (5-fold,
    inside the training part) log-probabilities appended to the embedding, then the quadrant LR.
    ``X`` is ``[embedding, tonal]``; ``n_tonal`` its last columns."""

    def __init__(self, n_tonal: int, C: float = 0.01, C_tonal: float = 0.03) -> None:
        self.n, self.C, self.Ct = n_tonal, C, C_tonal

    def fit(self, X: np.ndarray, y: np.ndarray) -> "TonalStack":
        from sklearn.model_selection import StratifiedKFold

        from mer.train.probe import make_model

        emb, ton = X[:, :-self.n], X[:, -self.n:]
        oof = np.zeros((len(y), 4))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(ton, y):
            oof[te] = make_model("lr", C=self.Ct).fit(ton[tr], y[tr]).predict_proba(ton[te])
        self.tonal = make_model("lr", C=self.Ct).fit(ton, y)
        self.lr = make_model("lr", C=self.C).fit(np.hstack([emb, np.log(oof + 1e-6)]), y)
        self.classes_ = self.lr.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.tonal.predict_proba(X[:, -self.n:])
        return self.lr.predict_proba(np.hstack([X[:, :-self.n], np.log(p + 1e-6)]))


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()]).parse_args(argv)
    from mer.train.nested import grid
    from mer.train.probe import make_model

    root = data_root(args)
    data = load(data=root)
    emb = data.features("meanstd", LEVEL)
    ton = features(data.tracks)
    q = data.y
    header("Key and mode features", "features", len(q),
           "Mode (best major minus best minor key correlation), mean per quadrant: "
           + ", ".join(f"{c} {ton[q == c, 2].mean():+.3f}" for c in ("Q1", "Q2", "Q3", "Q4")))
    lr = lambda **p: make_model("lr", **p)  # noqa: E731
    row(REFERENCE, emb, data, lr, grid(C=C_GRID))
    row("LR on [embedding, 20 tonal statistics]", np.hstack([emb, ton]), data, lr, grid(C=C_GRID))
    row("LR on the 20 tonal statistics alone", ton, data, lr, grid(C=C_GRID))
    row("LR on [embedding, 4 key/mode correlations]", np.hstack([emb, ton[:, :4]]), data, lr, grid(C=C_GRID))
    row("stack: LR on [embedding, out-of-fold tonal-LR log-probabilities]", np.hstack([emb, ton]), data,
        lambda **p: TonalStack(ton.shape[1], **p), grid(C=C_GRID))


if __name__ == "__main__":
    main()
