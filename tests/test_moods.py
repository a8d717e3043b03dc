"""The mood-word tagger (mer.train.moods) on synthetic clips whose words depend on their vectors:
calibration, the folded head equal to the fitted tagger, nested scores against the baselines,
and the outputs that carry the words (predict JSON/CSV/table, the library's search)."""

from __future__ import annotations

import numpy as np
import pytest

from mer.train import moods

torch = pytest.importorskip("torch", reason="the mood head is a torch module (pip install 'mer-toolkit[train]')")
pytest.importorskip("sklearn", reason="the tagger's splitter is sklearn's (pip install 'mer-toolkit[train]')")


def synthetic(n: int = 400, d: int = 16, w: int = 6, seed: int = 0):  # noqa: ANN201
    """Clip vectors, quadrants, artists and word lists: each word's chance grows linearly with the
    vector (words 0-2) or is set by the quadrant alone (words 3-5), so both parts of the blend matter."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    q = np.array(["Q1", "Q2", "Q3", "Q4"])[(x[:, 0] > 0) * 1 + (x[:, 1] > 0) * 2]
    groups = np.array([f"artist{i // 4}" for i in range(n)])
    beta = rng.normal(size=(d, 3)) * 0.08
    prob = np.concatenate([np.clip(0.25 + x @ beta, 0.02, 0.98),  # the chance of a word grows with the vector
                           np.stack([np.where(q == f"Q{k + 1}", 0.6, 0.03) for k in range(3)], 1)], axis=1)
    y = (rng.random((n, w)) < prob).astype(float)
    words = [f"word{j}" for j in range(w)]
    lists = [[words[j] for j in range(w) if y[i, j]] for i in range(n)]
    return x, q, groups, lists, words


def test_vocabulary_keeps_words_with_enough_clips_most_frequent_first():
    lists = [["a", "b"], ["a"], ["a", "c"], ["b", "a"]]
    assert moods.vocabulary(lists, min_clips=2) == ["a", "b"]
    assert moods.words_of("Cathartic; Calm/Peaceful ;") == ["cathartic", "calm/peaceful"]
    assert moods.indicators([["b"], ["a", "zzz"]], ["a", "b"]).tolist() == [[0, 1], [1, 0]]


def test_platt_recovers_the_slope_and_offset_it_was_made_with():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(20000, 2)) * 3
    y = (rng.random(s.shape) < 1 / (1 + np.exp(-(np.array([0.7, 2.0]) * s + np.array([-1.0, 0.5]))))).astype(float)
    a, c = moods.platt(s, y)
    assert np.allclose(a, [0.7, 2.0], atol=0.08) and np.allclose(c, [-1.0, 0.5], atol=0.08)


def test_the_tagger_is_calibrated_and_the_folded_head_computes_it():
    from mer.models.blocks import MoodHead

    x, q, groups, lists, words = synthetic(n=3000)
    y = moods.indicators(lists, words)
    fit, held = np.arange(3000) < 2000, np.arange(3000) >= 2000  # whole artists on each side
    t = moods.fit_tagger(x[fit], y[fit], q[fit], groups[fit], words)
    z = (x - t.mean) / t.scale
    pq = moods.quadrant_lr(z[fit], q[fit]).predict_proba(z)
    p = t.predict(x, pq)
    assert p.shape == y.shape and ((0 <= p) & (p <= 1)).all()
    # calibration on clips it never saw: mean probability ~ rate, per word and in bins of 0.2
    assert np.allclose(p[held].mean(axis=0), y[held].mean(axis=0), atol=0.04)
    ph, yh = p[held].ravel(), y[held].ravel()
    bins = np.digitize(ph, [0.2, 0.4, 0.6, 0.8])
    for b in np.unique(bins):
        sel = bins == b
        if sel.sum() >= 200:
            assert abs(ph[sel].mean() - yh[sel].mean()) < 0.1, (b, ph[sel].mean(), yh[sel].mean())
    assert (t.blend[:3] > 0).all()  # the words the vector decides lean on the tagger
    head = MoodHead(x.shape[1], len(words))
    with torch.no_grad():
        for name, value in moods.head_params(t).items():
            dict(head.named_parameters(), **dict(head.named_buffers()))[name].copy_(torch.as_tensor(value))
    logits = torch.as_tensor(np.log(pq), dtype=torch.float32)  # softmax(log p) = p
    got = head(torch.as_tensor(x, dtype=torch.float32), logits).numpy()
    assert np.allclose(got, p, atol=1e-4)


def test_nested_scores_put_the_blend_above_the_prior_and_beside_the_mixture():
    x, q, groups, lists, words = synthetic(seed=3)
    y = moods.indicators(lists, words)
    va = np.stack([x[:, 0], x[:, 1]], axis=1) / 3
    points = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5], [np.nan, np.nan], [0.1, 0.1]])
    res = moods.nested(x, y, q, groups, va, points, words, outer=4, seeds=(0,))
    assert set(res) == {"prior", "lexicon", "mixture", "tagger", "blend"}
    assert np.allclose(res["prior"]["roc_auc"], 0.5, atol=0.1)
    assert res["blend"]["pr_auc"].mean() > res["prior"]["pr_auc"].mean() + 0.1
    assert res["blend"]["roc_auc"][:3].mean() > res["mixture"]["roc_auc"][:3].mean()  # the vector words
    assert res["blend"]["brier"].mean() <= res["prior"]["brier"].mean()
    assert res["lexicon"]["roc_auc"][4] == pytest.approx(0.5)  # a word with no lexicon point ranks nothing
