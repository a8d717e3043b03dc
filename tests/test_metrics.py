"""mer.metrics against hand-worked values and against scipy / scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from mer import metrics

scipy_stats = pytest.importorskip("scipy.stats")
sk = pytest.importorskip("sklearn.metrics")

T = np.array([1.0, 2.0, 3.0, 4.0])
P = np.array([1.0, 3.0, 2.0, 4.0])


def test_hand_worked_values():
    # errors 0, 1, -1, 0 -> MSE 0.5
    assert metrics.rmse(T, P) == pytest.approx(np.sqrt(0.5))
    assert metrics.mae(T, P) == pytest.approx(0.5)
    # deviations t: -1.5 -.5 .5 1.5; p: -1.5 .5 -.5 1.5 -> cov sum 4, var sums 5 and 5 -> r = 0.8
    assert metrics.pearson(T, P) == pytest.approx(0.8)
    # SS_res = 2, SS_tot = 5 -> R2 = 0.6
    assert metrics.r2(T, P) == pytest.approx(0.6)
    # population cov 1.0, var 1.25 each, equal means -> CCC = 2 / 2.5 = 0.8
    assert metrics.ccc(T, P) == pytest.approx(0.8)
    # a shift by 1 keeps r = 1 but CCC = 2*1.25 / (1.25 + 1.25 + 1) = 2.5/3.5
    assert metrics.ccc(T, T + 1) == pytest.approx(2.5 / 3.5)
    assert metrics.pearson(T, T + 1) == pytest.approx(1.0)


def test_against_scipy_and_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = rng.normal(size=50)
        p = 0.6 * t + rng.normal(size=50)
        assert metrics.pearson(t, p) == pytest.approx(scipy_stats.pearsonr(t, p)[0], abs=1e-12)
        assert metrics.r2(t, p) == pytest.approx(sk.r2_score(t, p), abs=1e-12)
        assert metrics.rmse(t, p) == pytest.approx(np.sqrt(sk.mean_squared_error(t, p)), abs=1e-12)
        yt, yp = rng.integers(1, 5, size=80), rng.integers(1, 5, size=80)
        assert metrics.accuracy(yt, yp) == pytest.approx(sk.accuracy_score(yt, yp))
        assert metrics.macro_f1(yt, yp) == pytest.approx(sk.f1_score(yt, yp, average="macro"))
        np.testing.assert_array_equal(metrics.confusion_matrix(yt, yp), sk.confusion_matrix(yt, yp, labels=[1, 2, 3, 4]))


def test_quadrant_metrics_by_hand():
    yt = np.array([1, 1, 2, 3, 4, 4])
    yp = np.array([1, 2, 2, 3, 4, 1])
    assert metrics.accuracy(yt, yp) == pytest.approx(4 / 6)
    cm = metrics.confusion_matrix(yt, yp)
    assert cm[0].tolist() == [1, 1, 0, 0] and cm[3].tolist() == [1, 0, 0, 1]
    # F1 per class: Q1 2*1/(2+2)=.5, Q2 2*1/(1+2)=.667, Q3 1, Q4 2*1/(2+1)=.667
    assert metrics.macro_f1(yt, yp) == pytest.approx((0.5 + 2 / 3 + 1 + 2 / 3) / 4)


def test_per_song_and_pooled():
    truth = [np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.0, 1.0, 2.0])]
    pred = [np.array([0.0, 1.0, 2.0]), np.array([2.0, 1.0, 2.0, 3.0])]
    mean, sd, n = metrics.per_song(metrics.rmse, truth, pred)
    assert (mean, sd, n) == (pytest.approx(0.5), pytest.approx(0.5), 2)
    assert metrics.pooled(metrics.rmse, truth, pred) == pytest.approx(np.sqrt(4 / 7))
    with pytest.warns(RuntimeWarning, match="undefined"):
        m, _, n = metrics.per_song(metrics.pearson, [np.ones(3), T], [np.arange(3.0), P])
    assert n == 1 and m == pytest.approx(0.8)


@pytest.mark.parametrize("t, p, msg", [
    (np.ones(3), np.ones(4), "shape"), (np.array([]), np.array([]), "empty"),
    (np.array([1.0, np.nan]), np.ones(2), "NaN")])
def test_validate_rejects_bad_input(t, p, msg):
    for fn in (metrics.rmse, metrics.pearson, metrics.r2, metrics.ccc):
        with pytest.raises(ValueError, match=msg):
            fn(t, p)


def test_undefined_correlations_are_nan():
    assert np.isnan(metrics.pearson(np.ones(4), T))
    assert np.isnan(metrics.r2(np.ones(4), T))
    with pytest.raises(ValueError, match="not in"):
        metrics.accuracy(np.array([1, 5]), np.array([1, 2]))
