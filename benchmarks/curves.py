"""How far the 2 Hz curve follows listeners' per-second annotations, beside naive curves.

Every clip in the data root (``--data``, default ``../shared/data``) with human per-second
labels: the 10 emoMusic clips (``emomusic-mini``: 45 s, labels from 15 s, [-1, 1]) and the 4
PMEmo samples (``pmemo-samples/*.json``: choruses, labels from 15.5 s, [0, 1] -> 2x - 1). Per song, the
MediaEval metrics (Pearson r and RMSE between a curve and the human curve, on the canonical
[-1, 1] scale, over the labelled steps), then mean ± sd over songs, per source and for all.

Curves: the model's; the model's smoothed by a moving mean (5 and 21 steps); the clip's
loudness (mean log-mel per step: r only, it is on no valence/arousal scale); a time ramp
(r only); and two flat curves for RMSE: the model's own static prediction held for the whole
clip (what a curve must beat to say anything about within-song change) and 0 (neutral). A
flat curve has no per-song r.

    python -m benchmarks.curves --data ../shared/data [--model default]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from benchmarks._data import data_parser, data_root
from mer import metrics
from mer.datasets import Track, load_dataset
from mer.datasets.items import targets
from mer.infer import Inference

def pmemo_samples(folder: Path) -> list[Track]:
    """The PMEmo sample clips (``<id>.mp3`` + ``<id>.json`` with ``dynamic.t/v/a`` on [0, 1])."""
    tracks = []
    for meta in sorted(folder.glob("*.json")):
        doc = json.loads(meta.read_text())
        if not isinstance(doc, dict) or "dynamic" not in doc:
            continue  # index.json
        d = doc["dynamic"]
        dyn = np.stack([np.asarray(d["v"], float), np.asarray(d["a"], float)], axis=1) * 2 - 1
        tracks.append(Track(str(doc["id"]), folder / f"{doc['id']}.mp3", times=np.asarray(d["t"], float),
                            dynamic=dyn.astype(np.float32), artist=doc.get("artist")))
    return tracks


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, "valid")


def curves(inference: Inference, track: Track) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, bool]]]:
    """(human curve (n, 2) with NaN where unlabelled, {name: (curve (n, 2), on the valence/arousal
    scale, so that an RMSE means something)})."""
    x = inference.features(track.audio_path)
    out = inference(x)
    curve, static = out["dynamic"], out["static"]
    n = len(curve)
    _, human = targets(track, n)
    per_step = x[0].mean(axis=0)
    step = inference.feature.frames_per_second / 2
    loud = np.array([per_step[int(i * step):int((i + 1) * step)].mean() for i in range(n)])
    return human, {
        "model": (curve, True),
        "model, 5-step moving mean": (np.stack([smooth(curve[:, d], 5) for d in (0, 1)], 1), True),
        "model, 21-step moving mean": (np.stack([smooth(curve[:, d], 21) for d in (0, 1)], 1), True),
        "flat: model's static value": (np.tile(np.asarray(static, float).reshape(1, 2), (n, 1)), True),
        "flat: 0 (neutral)": (np.zeros((n, 2)), True),
        "loudness (mean log-mel)": (np.stack([loud, loud], 1), False),
        "time ramp": (np.stack([np.arange(n, dtype=float)] * 2, 1), False),
    }


def score(pairs: list[tuple[np.ndarray, np.ndarray]], metric, d: int, fmt: str) -> str:  # noqa: ANN001
    """``metric`` per song on dimension ``d`` over the labelled steps: "mean ± sd", or n/a."""
    ys, ps = [], []
    for human, c in pairs:
        ok = np.isfinite(human[:, d])
        ys.append(human[ok, d])
        ps.append(c[ok, d])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flat curves: r undefined, shown as n/a
        mean, sd, n = metrics.per_song(metric, ys, ps)
    return "n/a" if n == 0 else f"{mean:{fmt}} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--model", default="default")
    args = ap.parse_args(argv)
    data = data_root(args)
    inference = Inference.open(args.model)
    sources = {"emoMusic": [t for t in load_dataset("emomusic", data / "emomusic-mini").tracks() if t.dynamic is not None],
               "PMEmo": pmemo_samples(data / "pmemo-samples")}
    results = {name: [curves(inference, t) for t in tracks] for name, tracks in sources.items()}
    results["all"] = [r for name in sources for r in results[name]]
    print(f"model {args.model}; per-song Pearson r and RMSE against the human per-second labels (canonical "
          f"[-1, 1]), mean ± sd over songs\n")
    print("| curve | songs | valence r | arousal r | valence RMSE | arousal RMSE |")
    print("|---|---|---|---|---|---|")
    for name, (_, scaled) in results["all"][0][1].items():
        for src, rows in results.items():
            pairs = [(human, c[name][0]) for human, c in rows]
            r = [score(pairs, metrics.pearson, d, "+.3f") for d in (0, 1)]
            rms = [score(pairs, metrics.rmse, d, ".3f") if scaled else "n/a" for d in (0, 1)]
            print(f"| {name} | {src} ({len(rows)}) | {r[0]} | {r[1]} | {rms[0]} | {rms[1]} |")


if __name__ == "__main__":
    main()
