"""Quadrant probabilities: the agreement rule, the probe folded into the model, nested CV's honesty."""

from __future__ import annotations

import numpy as np
import pytest

from mer.infer.inference import agree, quadrant_index
from mer.scales import quadrant


def test_agree_adds_probabilities_and_leaves_the_point_where_the_regression_put_it():
    logits = np.log(np.array([0.1, 0.2, 0.6, 0.1]))  # Q3 most probable
    out = agree({"static": np.array([0.2, 0.3], np.float32), "dynamic": np.zeros((3, 2)), "quadrant": logits})
    assert np.allclose(out["quadrant_probs"], [0.1, 0.2, 0.6, 0.1], atol=1e-6)
    assert np.allclose(out["static"], [0.2, 0.3])  # not moved onto an axis
    assert quadrant_index(out) == 3 and quadrant_index({"static": np.array([0.2, -0.1])}) == 4
    assert agree(out) == out  # idempotent (streamed outputs are agreed once more by many())
    over = agree({"static": np.array([1.3, -0.2], np.float32), "dynamic": np.array([[1.1, -1.4]], np.float32)})
    assert np.allclose(over["static"], [1.0, -0.2]) and np.allclose(over["dynamic"], [[1.0, -1.0]])
    plain = {"static": np.array([0.1, 0.1])}
    assert agree(plain) is plain


def test_predictions_report_the_classifier_and_say_when_the_point_disagrees(shared):
    """On real clips the default reports its classifier's quadrant, no point is pushed onto an
    axis, and ``point_quadrant`` flags the (few) clips where the two heads disagree."""
    import glob

    from mer.infer import Predictor

    files = sorted(glob.glob(str(shared("4q-dev") / "**" / "*.mp3"), recursive=True))[::20]
    pred = Predictor("default")
    preds = [pred(f) for f in files]
    for p in preds:
        assert p.quadrant == max(p.probabilities, key=p.probabilities.get)
        assert p.point_quadrant == quadrant(p.valence, p.arousal).name
        assert p.on_scale()["point_quadrant"] == p.point_quadrant
    on_axis = sum(p.valence == 0.0 or p.arousal == 0.0 for p in preds)
    assert on_axis == 0, f"{on_axis} of {len(preds)} points exactly on an axis"  # moving them put 7.5% there
    assert any(p.point_quadrant != p.quadrant for p in preds)  # the 30 clips hold disagreements: flagged


def test_probe_folded_into_the_heads_equals_sklearn():
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from mer.models.blocks import VAHeads
    from mer.train.probe import QUADRANTS, make_model, pool, set_probe_weights

    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(12, 16)) + rng.normal(size=16) for _ in range(80)]
    y = QUADRANTS[rng.integers(0, 4, 80)]
    va = rng.normal(size=(80, 2))
    for feats in ("mean", "meanstd"):
        X = pool(seqs, feats)
        clf = make_model("lr", C=0.5).fit(X, y)
        reg = make_model("ridge_va", alpha=3.0).regressor.fit(pool(seqs, "mean"), va)

        class M:  # the only part of a model set_probe_weights touches
            heads = VAHeads(16, quadrant=True)

        set_probe_weights(M, clf, reg, 1.7, feats)
        seq = torch.tensor(np.stack(seqs[:5]), dtype=torch.float32)
        out = M.heads(seq, 12)
        p = torch.softmax(out["quadrant"], dim=-1).detach().numpy()
        z = np.log(clf.predict_proba(X[:5])) / 1.7
        ref = np.exp(z - z.max(1, keepdims=True))
        ref /= ref.sum(1, keepdims=True)
        assert np.abs(p - ref).max() < 1e-4, feats
        static = out["static"].detach().numpy()
        assert np.abs(static - reg.predict(pool(seqs[:5], "mean"))).max() < 1e-4
        step = out["dynamic"][0, 3].detach().numpy()  # every step through the same layer
        assert np.abs(step - reg.predict(seqs[0][3:4])[0]).max() < 1e-4


def test_nested_cv_choices_never_see_the_outer_test_fold():
    pytest.importorskip("sklearn")
    from mer.train.nested import grid, nested_cv

    rng = np.random.default_rng(1)
    n = 120
    y = np.array(["Q1", "Q2", "Q3", "Q4"])[rng.integers(0, 4, n)]
    X = rng.normal(size=(n, 5)) + (y == "Q1")[:, None] * 0.8
    groups = np.arange(n) // 2  # pairs of clips share an artist
    seen: list[set] = []

    class Spy:
        def __init__(self, C: float = 1.0) -> None:
            from sklearn.linear_model import LogisticRegression

            self.model = LogisticRegression(C=C, max_iter=2000)

        def fit(self, Xf, yf):  # noqa: ANN001, ANN201
            seen.append({tuple(np.round(r, 6)) for r in Xf})
            self.model.fit(Xf, yf)
            self.classes_ = self.model.classes_
            return self

        def predict_proba(self, Xp):  # noqa: ANN001, ANN201
            return self.model.predict_proba(Xp)

    res = nested_cv(X, y, groups, Spy, grid(C=[0.1, 1.0]), outer=3, inner=3, seeds=(0, 1))
    s = res.summary()
    assert 0 <= s["f1"] <= 1 and s["repeats"] == 2 and s["folds"] == 6 and "ece_calibrated" in s
    # every fit (inner and outer) was on a training part: no fit saw all clips
    assert all(len(rows) < n for rows in seen)
    assert sum(s["choices"].values()) == 6
