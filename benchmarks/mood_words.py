"""Do the 4Q clips' AllMusic mood words help as an auxiliary target? Nested CV, as the default's.

The 4Q metadata lists several AllMusic mood words per clip (``MoodsStrSplit``, 217 distinct
words, ~6.6 per clip): far more labels than the 600 quadrants. Two ways to use them with the
shipped default's features (musicnn MSD mean+sd embedding of loudness-normalised audio):

- **stack**: ridge from the standardised embedding to the mood-word indicators (words seen at
  least 8 times in the training part), its out-of-fold predictions (5-fold, inside the
  training part) appended to the embedding, then logistic regression on the quadrant;
- **bottleneck**: logistic regression on the predicted mood-word profile alone.

Each is scored with the same repeated nested protocol as ``benchmarks/nested_4q.yaml`` (5
outer x 4 inner artist-grouped folds, 5 seeds; C and the ridge alpha chosen inside), beside the
shipped candidate re-run in the same process as the reference. The mood words of a clip are
used only when it is in a training part. Prints one markdown table.

Usage (from the repository root; needs the train extra and the data root, ``--data``)::

    python -m benchmarks.mood_words --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, REFERENCE, ProbabilityClassifier, load, row



class MoodStack(ProbabilityClassifier):
    """Quadrant classifier with mood-word targets; ``fit(X, fy)``: ``fy[:, 0]`` the quadrant,
    ``fy[:, 1:]`` the clip's mood-word indicators (what ``nested_cv``'s ``fit_y`` passes)."""

    def __init__(self, C: float = 0.01, alpha: float = 100.0, only_moods: bool = False, min_count: int = 8) -> None:
        self.C, self.alpha, self.only, self.min_count = C, alpha, only_moods, min_count

    def fit(self, X: np.ndarray, fy: np.ndarray) -> "MoodStack":
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import KFold
        from sklearn.preprocessing import StandardScaler

        labels, moods = fy[:, 0].astype(str), fy[:, 1:].astype(float)
        moods = moods[:, moods.sum(axis=0) >= self.min_count]  # words seen often enough in this training part
        self.scale = StandardScaler().fit(X)
        z = self.scale.transform(X)
        oof = np.zeros_like(moods)
        for tr, te in KFold(5, shuffle=True, random_state=0).split(z):
            oof[te] = Ridge(alpha=self.alpha).fit(z[tr], moods[tr]).predict(z[te])
        self.ridge = Ridge(alpha=self.alpha).fit(z, moods)
        f = oof if self.only else np.hstack([z, oof])
        self.scale2 = StandardScaler().fit(f)
        self.lr = LogisticRegression(C=self.C, max_iter=5000).fit(self.scale2.transform(f), labels)
        self.classes_ = self.lr.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = self.scale.transform(X)
        p = self.ridge.predict(z)
        return self.lr.predict_proba(self.scale2.transform(p if self.only else np.hstack([z, p])))


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()]).parse_args(argv)
    from mer.train.nested import grid
    from mer.train.probe import make_model

    root = data_root(args)
    data = load(data=root)
    x = data.features("meanstd", LEVEL)
    with open(root / "4q-dev" / "panda_dataset_taffc_metadata.csv", encoding="latin-1") as fh:
        meta = {r["Song"]: r for r in csv.DictReader(fh)}
    words = [{w.strip().lower() for w in meta[t.track_id]["MoodsStrSplit"].split(";") if w.strip()}
             for t in data.tracks]
    vocab = sorted(set().union(*words))
    fy = np.empty((len(data.y), 1 + len(vocab)), dtype=object)
    fy[:, 0] = data.y
    fy[:, 1:] = np.array([[w in ws for w in vocab] for ws in words], float)
    print(f"### Mood words as an auxiliary target: {len(data.y)} clips, {len(vocab)} mood words "
          f"({fy[:, 1:].astype(float).sum(axis=1).mean():.1f} per clip), nested 5 x 4 folds, 5 seeds\n")
    print("| model | nested macro-F1 (mean ± sd over repeats) | sd over folds | accuracy | most chosen | time (s) |")
    print("|---|---|---|---|---|---|")
    row(REFERENCE, x, data, lambda **p: make_model("lr", **p), grid(C=C_GRID))
    row("stack: LR on [embedding, out-of-fold mood-word predictions]", x, data, lambda **p: MoodStack(**p),
        grid(C=[0.003, 0.01, 0.03, 0.1], alpha=[100.0, 1000.0]), fy)
    row("bottleneck: LR on mood-word predictions only", x, data, lambda **p: MoodStack(only_moods=True, **p),
        grid(C=[0.01, 0.03, 0.1, 0.3, 1.0], alpha=[100.0, 1000.0]), fy)


if __name__ == "__main__":
    main()
