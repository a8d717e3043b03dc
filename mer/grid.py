"""The 2 Hz time grid of every dynamic output and label (no torch here).

Step i covers [0.5 i, 0.5 (i + 1)) s and is stamped at its end, ``t_i = 0.5 (i + 1)`` (so
DEAM's label ``sample_15000ms`` is step 29 and the last label of a 45 s clip, 45.0 s, is
step 89). A clip of ``duration`` seconds has ``max(1, floor(duration * 2))`` steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .features import FeatureConfig

GRID_SECONDS = 0.5


def n_steps(n_frames: int, feature: "FeatureConfig") -> int:
    """Dynamic steps for ``n_frames`` feature frames: ``max(1, floor(n_frames * hop / (sr * 0.5)))``.

    Integer arithmetic, so that ``torch.export`` keeps it symbolic in the number of frames
    and an exported ONNX graph accepts any length (from one step's worth of frames up)."""
    return max(1, (n_frames * feature.hop_length * 2) // feature.sample_rate)


def min_frames(feature: "FeatureConfig") -> int:
    """The fewest frames that make one full step (0.5 s)."""
    return -(-feature.sample_rate // (2 * feature.hop_length))


def step_times(n: int) -> np.ndarray:
    """Timestamps (s) of ``n`` dynamic steps: 0.5, 1.0, ..."""
    return GRID_SECONDS * (np.arange(n) + 1)


def time_to_step(t: np.ndarray) -> np.ndarray:
    """Index of the dynamic step stamped at time ``t`` (inverse of :func:`step_times`)."""
    return np.rint(np.asarray(t) / GRID_SECONDS).astype(np.int64) - 1
