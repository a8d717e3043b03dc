"""How far the 2 Hz curve follows listeners' per-second annotations, beside naive curves.

On the emoMusic clips with per-second labels (``../shared/data/emomusic-mini``: 10 clips,
45 s, labels from 15 s), per song: Pearson r between each curve and the human curve, then
mean ± sd over songs (MediaEval's way). Curves: the model's, the model's smoothed by a
moving mean (5 and 21 steps), the clip's loudness (mean log-mel per step), and a time ramp.

    python benchmarks/curves.py [--model default] [--root ../shared/data/emomusic-mini]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mer.datasets import load_dataset  # noqa: E402
from mer.datasets.items import targets  # noqa: E402
from mer.infer import Inference  # noqa: E402


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(b)
    a, b = a[ok], b[ok]
    return float("nan") if len(a) < 3 or a.std() == 0 or b.std() == 0 else float(np.corrcoef(a, b)[0, 1])


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, "valid")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "emomusic-mini"))
    args = ap.parse_args()
    inference = Inference.open(args.model)
    tracks = [t for t in load_dataset("emomusic", args.root).tracks() if t.dynamic is not None]
    scores: dict[str, list[list[float]]] = {}
    for t in tracks:
        x = inference.features(t.audio_path)
        curve = inference(x)["dynamic"]
        n = len(curve)
        _, human = targets(t, n)
        per_step = x[0].mean(axis=0)
        step = inference.feature.frames_per_second / 2
        loud = np.array([per_step[int(i * step):int((i + 1) * step)].mean() for i in range(n)])
        curves = {"model": curve, "model, 5-step moving mean": np.stack([smooth(curve[:, d], 5) for d in (0, 1)], 1),
                  "model, 21-step moving mean": np.stack([smooth(curve[:, d], 21) for d in (0, 1)], 1),
                  "loudness (mean log-mel)": np.stack([loud, loud], 1),
                  "time ramp": np.stack([np.arange(n, dtype=float)] * 2, 1)}
        for name, c in curves.items():
            scores.setdefault(name, []).append([pearson(c[:, d], human[:, d]) for d in (0, 1)])
    print(f"{len(tracks)} clips of {args.root}, model {args.model}\n")
    print("| curve | valence per-song r | arousal per-song r |")
    print("|---|---|---|")
    for name, rows in scores.items():
        a = np.array(rows)
        print(f"| {name} | {np.nanmean(a[:, 0]):+.3f} ± {np.nanstd(a[:, 0]):.3f} | "
              f"{np.nanmean(a[:, 1]):+.3f} ± {np.nanstd(a[:, 1]):.3f} |")


if __name__ == "__main__":
    main()
