"""Other quadrant heads on the default's features: a factorised head and an RBF support vector machine. Nested CV.

The default's quadrant head is a multinomial logistic regression (four weight vectors) on the
musicnn MSD mean+sd embedding of loudness-normalised audio. Two alternatives:

- **factorised**: P(quadrant) = P(valence sign) x P(arousal sign), two binary logistic
  regressions (positive valence: Q1+Q4 against Q2+Q3; high arousal: Q1+Q2 against Q3+Q4),
  each fit on all clips of the training part. More constrained: it cannot learn a different
  valence direction for calm and for agitated music, where held-out clips fail most.
- **SVM**: standardise + support vector machine with an RBF kernel (gamma "scale"), the
  classifier of the 4Q paper (Panda et al. 2018, on hand-crafted features); C chosen inside.

Scored with the default's repeated nested protocol (5 outer x 4 inner artist-grouped folds,
5 seeds), beside the shipped candidate, in the same process. Prints one markdown table.

Usage (from the repository root; needs the train extra and the data root, ``--data``)::

    python -m benchmarks.heads_4q --data ../shared/data
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, REFERENCE, ProbabilityClassifier, header, load, row

QUADRANTS = np.array(["Q1", "Q2", "Q3", "Q4"])


class SignLR(ProbabilityClassifier):
    """Two binary logistic regressions (valence sign, arousal sign); quadrant probabilities are their products."""

    def __init__(self, C: float = 0.01) -> None:
        self.C = C

    def fit(self, X: np.ndarray, y: np.ndarray) -> SignLR:
        from mer.train.probe import make_model

        y = np.asarray(y)
        self.valence = make_model("lr", C=self.C).fit(X, np.isin(y, ["Q1", "Q4"]))
        self.arousal = make_model("lr", C=self.C).fit(X, np.isin(y, ["Q1", "Q2"]))
        self.classes_ = QUADRANTS
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        pv = self.valence.predict_proba(X)[:, list(self.valence.classes_).index(True)]
        pa = self.arousal.predict_proba(X)[:, list(self.arousal.classes_).index(True)]
        return np.stack([pv * pa, (1 - pv) * pa, (1 - pv) * (1 - pa), pv * (1 - pa)], axis=1)


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()]).parse_args(argv)
    from mer.train.nested import grid
    from mer.train.probe import make_model

    root = data_root(args)
    data = load(data=root)
    X = data.features("meanstd", 0.139)
    header("Other quadrant heads", "head", len(data.y))
    row(REFERENCE, X, data, lambda **p: make_model("lr", **p), grid(C=C_GRID))
    row("factorised: valence-sign LR x arousal-sign LR", X, data, lambda **p: SignLR(**p), grid(C=C_GRID))
    row("SVM, RBF kernel (gamma 'scale')", X, data, svm, grid(C=[0.3, 1.0, 3.0, 10.0]))


def svm(C: float = 1.0):  # noqa: ANN201  (a scikit-learn pipeline)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=C, kernel="rbf", gamma="scale"))


if __name__ == "__main__":
    main()
