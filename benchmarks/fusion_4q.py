"""Two musicnn backbones, one trained on MSD tags and one on MagnaTagATune's: fused. Nested CV.

The shipped default probes musicnn's MSD embedding. musicnn also ships MTT weights, a model of
the same shape trained on other music (MagnaTagATune: mostly instrumental, classical, ambient,
world) with other tags (quiet, soft, slow, vocal, ...). The maintainers' held-out run scored
an MTT probe best of the single frozen embeddings they tried (0.703, against 0.684 for MSD), so
the two may err on different clips. Candidates, all on the mean+sd embedding of
loudness-normalised audio:

- **MTT alone**: LR on the MTT embedding;
- **concatenated**: LR on [MSD, MTT] (800-d);
- **late fusion**: one LR per backbone, their quadrant probabilities averaged with equal
  weights (C chosen inside, the same for both), or with the MSD weight w chosen inside too.

Scored with the default's repeated nested protocol (5 outer x 4 inner artist-grouped folds,
5 seeds), beside the shipped candidate, in the same process. Prints one markdown table and
the pooled out-of-fold confusion matrices (rows true Q1..Q4).

Usage (from the repository root; needs the train extra and the data root, ``--data``)::

    python -m benchmarks.fusion_4q --data ../shared/data
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, REFERENCE, ProbabilityClassifier, header, load, row


class LateFusion(ProbabilityClassifier):
    """One standardised logistic regression per column block; probabilities averaged with weights ``w``."""

    def __init__(self, blocks: list[slice], C: float = 0.01, w: float = 0.5) -> None:
        self.blocks, self.C, self.weights = blocks, C, [w, 1.0 - w]

    def fit(self, X: np.ndarray, y: np.ndarray) -> LateFusion:
        from mer.train.probe import make_model

        self.models = [make_model("lr", C=self.C).fit(X[:, b], y) for b in self.blocks]
        self.classes_ = self.models[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return sum(w * m.predict_proba(X[:, b]) for w, m, b in zip(self.weights, self.models, self.blocks))


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()]).parse_args(argv)
    from mer.train.nested import grid
    from mer.train.probe import make_model

    root = data_root(args)
    data = load(data=root)
    msd = data.features("meanstd", LEVEL)
    mtt = load("mtt", data=root).features("meanstd", LEVEL)
    both = np.hstack([msd, mtt])
    blocks = [slice(0, msd.shape[1]), slice(msd.shape[1], both.shape[1])]
    lr = lambda **p: make_model("lr", **p)  # noqa: E731
    header("MSD and MTT musicnn, fused", "model", len(data.y))
    rows = {
        "reference": row(REFERENCE, msd, data, lr, grid(C=C_GRID)),
        "mtt": row("LR on the MTT embedding", mtt, data, lr, grid(C=C_GRID)),
        "concat": row("LR on [MSD, MTT] concatenated", both, data, lr, grid(C=C_GRID)),
        "late": row("late fusion: mean of the MSD and MTT LRs' probabilities", both, data,
                    lambda **p: LateFusion(blocks, **p), grid(C=C_GRID)),
        "late_w": row("late fusion, MSD weight w chosen inside (0.3, 0.5, 0.7)", both, data,
                      lambda **p: LateFusion(blocks, **p), grid(C=C_GRID, w=[0.5, 0.3, 0.7])),
    }
    print("\nPooled out-of-fold confusion (rows true Q1..Q4, columns predicted, 5 repeats x 600 clips):\n")
    for name, s in rows.items():
        print(f"- {name}: {s['confusion']}")


if __name__ == "__main__":
    main()
