"""mer.scales: conversions and Russell quadrants."""

from __future__ import annotations

import numpy as np
import pytest

from mer import ConfigError, scales


def test_conversions():
    assert scales.to_canonical(5.0, "1-9") == 0.0
    assert scales.to_canonical(9.0, "1-9") == 1.0
    assert scales.to_canonical(1.0, "deam") == -1.0
    assert scales.to_canonical(0.75, "0-1") == 0.5
    assert scales.from_canonical(-0.5, "0-1") == 0.25
    x = np.array([1.0, 3.0, 9.0])
    np.testing.assert_allclose(scales.from_canonical(scales.to_canonical(x, "1-9"), "1-9"), x)
    np.testing.assert_allclose(scales.to_canonical(x, "1-9"), [-1.0, -0.5, 1.0])
    with pytest.raises(ConfigError, match="unknown scale"):
        scales.to_canonical(1.0, "0-100")


@pytest.mark.parametrize("v, a, name, words", [
    (0.5, 0.5, "Q1", "happy/excited"), (-0.5, 0.5, "Q2", "angry/tense"),
    (-0.5, -0.5, "Q3", "sad/depressed"), (0.5, -0.5, "Q4", "calm/relaxed"), (0.0, 0.0, "Q1", "happy/excited"),
    (0.0, -0.1, "Q4", "calm/relaxed"), (-0.1, 0.0, "Q2", "angry/tense")])
def test_quadrants(v, a, name, words):
    q = scales.quadrant(v, a)
    assert (q.name, q.words) == (name, words)
    assert scales.quadrant_index(np.array([v]), np.array([a]))[0] == q.number
    cv, ca = scales.quadrant_center(name)
    assert scales.quadrant(cv, ca) == q


def test_quadrant_rejects_nan():
    with pytest.raises(ConfigError, match="must be finite numbers"):
        scales.quadrant(float("nan"), 0.1)
