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


def whole_step_window(feature: "FeatureConfig", window_frames: int) -> tuple[int, int]:
    """(steps, frames) of the longest whole number of steps that fits a native window of
    ``window_frames`` frames (at least one step): the windows :func:`native_windows` cuts."""
    fps = feature.sample_rate / feature.hop_length
    per = max(1, int(window_frames / fps / GRID_SECONDS))
    return per, int(round(per * GRID_SECONDS * fps))


def native_windows(n_frames: int, feature: "FeatureConfig", window_frames: int) -> list[tuple[int, int, int]]:
    """How an encoder with a native window of ``window_frames`` frames covers ``n_frames``:
    ``(start, stop, steps)`` per window, each a whole number of steps long (the last one shorter;
    one of less than a step is left out, as :func:`n_steps` leaves that audio out), ``steps``
    being the steps it gives. Shared by :class:`mer.models.hf.HubBackbone` and the ONNX engine
    that runs its exported window graph."""
    per, frames = whole_step_window(feature, window_frames)
    n = n_steps(n_frames, feature)
    return [(s0, min(s0 + frames, n_frames), min(per, n - k * per))
            for k, s0 in enumerate(range(0, n_frames, frames)) if n - k * per > 0]


def step_pool(n_frames: int, offset: float, seconds: float, n: int) -> np.ndarray:
    """``(n, n_frames)`` weights that average an encoder's output frames into ``n`` steps: frame
    k is centred at ``(k + offset) * seconds`` and counts in the step its centre lies in (the
    last step takes the frames past it); a step no centre falls in takes the nearest frame."""
    centres = (np.arange(n_frames) + offset) * seconds
    idx = np.clip((centres / GRID_SECONDS).astype(np.int64), 0, n - 1)
    m = np.zeros((n, n_frames), dtype=np.float32)
    m[idx, np.arange(n_frames)] = 1.0
    empty = np.flatnonzero(m.sum(axis=1) == 0)
    if len(empty) and n_frames:
        mid = (empty + 0.5) * GRID_SECONDS
        m[empty, np.abs(mid[:, None] - centres[None]).argmin(axis=1)] = 1.0
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)


def step_times(n: int) -> np.ndarray:
    """Timestamps (s) of ``n`` dynamic steps: 0.5, 1.0, ..."""
    return GRID_SECONDS * (np.arange(n) + 1)


def time_to_step(t: np.ndarray) -> np.ndarray:
    """Index of the dynamic step stamped at time ``t`` (inverse of :func:`step_times`)."""
    return np.rint(np.asarray(t) / GRID_SECONDS).astype(np.int64) - 1
