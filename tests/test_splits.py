"""mer.splits and mer.reliability."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mer import ConfigError
from mer.datasets import load_dataset
from mer.reliability import mean_pairwise_r, spearman_brown
from mer.datasets.splits import Split, dataset_kfold, kfold, mediaeval2013


def _toy(n=200, n_artists=37, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    artists = [f"a{rng.integers(n_artists)}" for _ in ids]
    quads = [f"Q{rng.integers(1, 5)}" for _ in ids]
    return ids, artists, quads


@pytest.mark.parametrize("seed", range(5))
def test_no_artist_on_both_sides_and_every_id_tested_once(seed):
    ids, artists, quads = _toy(seed=seed)
    split = kfold(ids, 5, groups=artists, strata=quads, seed=seed)
    art = dict(zip(ids, artists))
    tested = []
    for train, test in split.folds:
        assert not {art[i] for i in train} & {art[i] for i in test}
        assert set(train) | set(test) == set(ids) and not set(train) & set(test)
        tested += test
    assert sorted(tested) == sorted(ids)


def test_same_seed_same_split_and_json_roundtrip(tmp_path):
    ids, artists, quads = _toy()
    a, b = kfold(ids, 4, artists, quads, seed=3), kfold(ids, 4, artists, quads, seed=3)
    assert a.folds == b.folds and kfold(ids, 4, artists, quads, seed=4).folds != a.folds
    a.to_json(tmp_path / "split.json")
    assert Split.from_json(tmp_path / "split.json").folds == [tuple(f) for f in a.folds]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not a split file"):
        Split.from_json(tmp_path / "bad.json")


def test_too_many_folds_fails_clearly():
    with pytest.raises(ConfigError, match="more than the 3 independent groups"):
        kfold(["a", "b", "c", "d"], 4, groups=["x", "x", "y", "z"])
    with pytest.raises(ConfigError, match="at least 2"):
        kfold(["a", "b"], 1)


def test_real_4q_split_is_grouped_and_balanced(shared):
    ds = load_dataset("4q", shared("4q-dev"))
    split = dataset_kfold(ds, 5, seed=0)
    for train, test in split.folds:
        assert not {ds.track(i).artist for i in train} & {ds.track(i).artist for i in test}
        counts = Counter(ds.track(i).quadrant for i in test)
        assert max(counts.values()) - min(counts.values()) <= 6, counts
    assert split.info["grouped_by"] == "artist"


def test_mediaeval2013_split_on_real_emomusic(shared):
    split = mediaeval2013(load_dataset("emomusic", shared("emomusic-mini")))
    train, test = split.folds[0]
    assert len(train) + len(test) == 744 and len(train) == 619 and not set(train) & set(test)


def test_spearman_brown_and_pairwise_r():
    assert spearman_brown(0.5, 1) == 0.5
    assert spearman_brown(0.5, 3) == pytest.approx(1.5 / 2.0)
    x = np.array([[1.0, 2, 3, 4], [2.0, 4, 6, 8], [4.0, 3, 2, 1]])
    assert mean_pairwise_r(x) == pytest.approx((1 - 1 - 1) / 3)
