"""The picture of one prediction (``mer predict --plot``): the valence-arousal plane with the
trajectory, and valence and arousal over time (with the per-segment results when there are
any), both on the scale the user asked for.

The 2 Hz curve's second-by-second movement does not follow listeners (docs/benchmarks.md, "The
2 Hz curve against listeners"), so both panels draw it smoothed by :func:`moving_mean` (10.5 s),
beside the whole clip's values as flat dashed lines, with a caption saying what it is worth. The
page of ``mer serve`` draws its chart the same way (``movingMean`` in mer/serve/static/app.js)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_path
from .scales import QUADRANTS, ArrayLike, from_canonical, get_scale

#: the moving mean's width in 0.5 s steps (10.5 s), as docs/benchmarks.md scores the smoothed curve
SMOOTH_STEPS = 21
#: what the curve is worth, from docs/benchmarks.md (14 clips with per-second human labels)
CURVE_NOTE = ("Lines: 10.5 s centred moving mean of the 2 Hz curve; dashed: the whole clip. Against listeners' "
              "per-second labels (14 clips) the valence curve's movement does not follow them (per-song r +0.03; "
              "the flat whole-clip value is closer, RMSE 0.225 vs 0.266), arousal only weakly (r +0.16; +0.40 on "
              "4 pop choruses; +0.19 smoothed). See docs/benchmarks.md.")


def moving_mean(x, k: int = SMOOTH_STEPS) -> np.ndarray:  # noqa: ANN001  (array-like)
    """The centred moving mean of ``x`` over ``k`` (odd) steps, as long as ``x``: the ends are padded
    with the first and last value. ``moving_mean([0, 0, 3, 0, 0], 3)`` -> ``[0, 1, 1, 1, 0]``."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return x
    return np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, "valid")



def plot_prediction(pred, out: str | os.PathLike, scale: str = "canonical") -> Path:  # noqa: ANN001  (a mer.Prediction)
    """Write a PNG (atomically) and return its path."""
    import matplotlib.pyplot as plt

    fig = figure(pred, scale)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out


def figure(pred, scale: str = "canonical"):  # noqa: ANN001, ANN201  (a mer.Prediction -> a matplotlib Figure)
    """The figure :func:`plot_prediction` writes: axes[0] the plane, axes[1] the curves over time
    (its first two lines the smoothed valence and arousal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    def conv(x: ArrayLike | list) -> np.ndarray:  # canonical values -> the same on ``scale``
        a = np.asarray(x, dtype=float)
        return a if scale == "canonical" else np.asarray(from_canonical(a, scale))

    lo, hi = float(conv(-1.0)), float(conv(1.0))
    mid, span = (lo + hi) / 2, (hi - lo) / 2
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(12.0, 6.0), gridspec_kw={"width_ratios": [1, 1.3]})
    ax.axhline(mid, color="0.6", lw=0.8)
    ax.axvline(mid, color="0.6", lw=0.8)
    for q in QUADRANTS.values():
        ax.text(mid + 0.78 * span * q.valence_sign, mid + 0.88 * span * q.arousal_sign, f"{q.name}\n{q.words}",
                ha="center", va="center", fontsize=9, color="0.35", bbox=dict(boxstyle="round", fc="0.96", ec="0.8"))
    raw = conv(pred.curve) if len(pred.curve) else np.zeros((0, 2))
    curve = np.stack([moving_mean(raw[:, 0]), moving_mean(raw[:, 1])], axis=1) if len(raw) else raw
    times = np.asarray(pred.times, dtype=float)
    if len(curve) > 1:
        pts = curve.reshape(-1, 1, 2)
        lc = LineCollection(list(np.concatenate([pts[:-1], pts[1:]], axis=1)), cmap="viridis", lw=1.6, alpha=0.85)
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
    # over time: the smoothed curve, the whole clip's values flat and dashed (what the curve must
    # beat), and each segment's static value as a step
    if len(curve):
        tx.plot(times, curve[:, 0], color="tab:blue", lw=1.6, label="valence (10.5 s mean)")
        tx.plot(times, curve[:, 1], color="tab:orange", lw=1.6, label="arousal (10.5 s mean)")
    tx.axhline(v, color="tab:blue", lw=1.0, ls="--", label="valence, whole clip")
    tx.axhline(a, color="tab:orange", lw=1.0, ls="--", label="arousal, whole clip")
    for k, s in enumerate(getattr(pred, "segments", []) or []):
        tx.hlines(float(conv(s.valence)), s.start, s.end, color="tab:blue", lw=2.5,
                  label="valence per segment" if k == 0 else None)
        tx.hlines(float(conv(s.arousal)), s.start, s.end, color="tab:orange", lw=2.5,
                  label="arousal per segment" if k == 0 else None)
    tx.axhline(mid, color="0.6", lw=0.8)
    tx.set(ylim=(lo - pad, hi + pad), xlabel="time (s)", ylabel=f"value ({get_scale(scale).name} scale)",
           title="valence and arousal over time (smoothed: see the note below)")
    tx.legend(fontsize=8, loc="upper right", ncol=2)
    fig.text(0.5, 0.01, CURVE_NOTE, ha="center", va="bottom", fontsize=8, color="0.3", wrap=True)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the note
    return fig
