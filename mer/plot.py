"""The valence-arousal picture of one prediction (``mer predict --plot``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_path
from .scales import QUADRANTS


def plot_prediction(pred, out: str | os.PathLike) -> Path:  # noqa: ANN001  (a mer.Prediction)
    """Write a PNG: the valence-arousal plane with quadrant names, the 2 Hz trajectory
    (coloured by time) and the static point. Returns the path written (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    for q in QUADRANTS.values():
        ax.text(0.78 * q.valence_sign, 0.88 * q.arousal_sign, f"{q.name}\n{q.words}", ha="center", va="center",
                fontsize=9, color="0.35", bbox=dict(boxstyle="round", fc="0.96", ec="0.8"))
    curve = np.asarray(pred.curve)
    if len(curve) > 1:
        pts = curve.reshape(-1, 1, 2)
        lc = LineCollection(np.concatenate([pts[:-1], pts[1:]], axis=1), cmap="viridis", lw=1.6, alpha=0.85)
        lc.set_array(np.asarray(pred.times[:-1], dtype=float))
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04, label="time (s)")
        ax.plot(*curve[0], "o", color="tab:green", ms=6, label="start")
        ax.plot(*curve[-1], "s", color="tab:purple", ms=6, label="end")
    ax.plot(pred.valence, pred.arousal, "*", color="tab:red", ms=20, mec="k",
            label=f"whole clip ({pred.valence:+.2f}, {pred.arousal:+.2f})")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="valence (negative → positive)",
           ylabel="arousal (calm → excited)", aspect="equal")
    ax.set_title(f"{Path(pred.path).name}\n{pred.quadrant} {pred.quadrant_words}, {pred.duration:.1f} s", fontsize=11)
    ax.legend(loc="lower center", fontsize=8, ncol=3, bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out
