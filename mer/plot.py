"""The picture of one prediction (``mer predict --plot``): the valence-arousal plane with the 2 Hz
trajectory, and valence and arousal over time (with the per-segment results when there are
any), both on the scale the user asked for."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_path
from .scales import QUADRANTS, from_canonical, get_scale


def plot_prediction(pred, out: str | os.PathLike, scale: str = "canonical") -> Path:  # noqa: ANN001  (a mer.Prediction)
    """Write a PNG (atomically) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    conv = (lambda x: np.asarray(x, dtype=float)) if scale == "canonical" else (lambda x: from_canonical(np.asarray(x, dtype=float), scale))
    lo, hi = float(conv(-1.0)), float(conv(1.0))
    mid, span = (lo + hi) / 2, (hi - lo) / 2
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(12.0, 5.6), gridspec_kw={"width_ratios": [1, 1.3]})
    ax.axhline(mid, color="0.6", lw=0.8)
    ax.axvline(mid, color="0.6", lw=0.8)
    for q in QUADRANTS.values():
        ax.text(mid + 0.78 * span * q.valence_sign, mid + 0.88 * span * q.arousal_sign, f"{q.name}\n{q.words}",
                ha="center", va="center", fontsize=9, color="0.35", bbox=dict(boxstyle="round", fc="0.96", ec="0.8"))
    curve = conv(pred.curve) if len(pred.curve) else np.zeros((0, 2))
    times = np.asarray(pred.times, dtype=float)
    if len(curve) > 1:
        pts = curve.reshape(-1, 1, 2)
        lc = LineCollection(np.concatenate([pts[:-1], pts[1:]], axis=1), cmap="viridis", lw=1.6, alpha=0.85)
        lc.set_array(times[:-1])
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.04, label="time (s)")
        ax.plot(*curve[0], "o", color="tab:green", ms=6, label="start")
        ax.plot(*curve[-1], "s", color="tab:purple", ms=6, label="end")
    v, a = float(conv(pred.valence)), float(conv(pred.arousal))
    ax.plot(v, a, "*", color="tab:red", ms=20, mec="k", label=f"whole clip ({v:+.2f}, {a:+.2f})")
    pad = 0.05 * span
    ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), xlabel="valence (negative → positive)",
           ylabel="arousal (calm → excited)", aspect="equal")
    conf = f" ({pred.confidence:.0%})" if getattr(pred, "confidence", None) is not None else ""
    ax.set_title(f"{Path(pred.path).name}\n{pred.quadrant} {pred.quadrant_words}{conf}, {pred.duration:.1f} s",
                 fontsize=11)
    ax.legend(loc="lower center", fontsize=8, ncol=3, bbox_to_anchor=(0.5, -0.24))
    # over time: the 2 Hz curve, and each segment's static value as a step
    if len(curve):
        tx.plot(times, curve[:, 0], color="tab:blue", lw=1.0, alpha=0.6, label="valence (2 Hz)")
        tx.plot(times, curve[:, 1], color="tab:orange", lw=1.0, alpha=0.6, label="arousal (2 Hz)")
    for k, s in enumerate(getattr(pred, "segments", []) or []):
        tx.hlines(float(conv(s.valence)), s.start, s.end, color="tab:blue", lw=2.5,
                  label="valence per segment" if k == 0 else None)
        tx.hlines(float(conv(s.arousal)), s.start, s.end, color="tab:orange", lw=2.5,
                  label="arousal per segment" if k == 0 else None)
    tx.axhline(mid, color="0.6", lw=0.8)
    tx.set(ylim=(lo - pad, hi + pad), xlabel="time (s)", ylabel=f"value ({get_scale(scale).name} scale)",
           title="valence and arousal over time")
    tx.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
