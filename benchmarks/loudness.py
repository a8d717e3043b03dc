"""How much a model's output moves when only the playback level changes.

Every ``--every``-th clip of the 4Q folder is decoded, scaled by ``--gain-db`` and written as a
float WAV (no clipping, no re-encoding), then both versions are predicted by each model.
Prints one table row per model: how often the quadrant changes and the mean absolute change
of valence and arousal.

Usage (from the repository root)::

    python -m benchmarks.loudness --data ../shared/data [--models default /tmp/old/default] [--gain-db -12] [--every 6]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks._data import data_parser, data_root
from mer import audio
from mer.infer import Predictor


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--clips", default=None, help="the 4Q folder (default: DATA/4q-dev)")
    ap.add_argument("--models", nargs="+", default=["default"])
    ap.add_argument("--gain-db", type=float, default=-12.0)
    ap.add_argument("--every", type=int, default=6, help="use every N-th clip (default 6: 100 of 600)")
    args = ap.parse_args(argv)
    args.clips = args.clips or str(data_root(args) / "4q-dev")
    clips = sorted(Path(args.clips).glob("Q?/*.mp3"))[:: args.every]
    gain = 10 ** (args.gain_db / 20)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = []
        for i, c in enumerate(clips):
            y, sr = audio.load(c, mono=False)
            a, b = Path(tmp, f"{i}-a.wav"), Path(tmp, f"{i}-b.wav")
            sf.write(a, y.T, sr, subtype="FLOAT")
            sf.write(b, (y * gain).T, sr, subtype="FLOAT")
            pairs.append((a, b))
        print(f"{len(pairs)} clips of {args.clips}, gain {args.gain_db:+g} dB\n")
        print("| model | quadrant changed | mean abs. change of valence | mean abs. change of arousal |")
        print("|---|---|---|---|")
        for model in args.models:
            predictor = Predictor(model)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = [(predictor(a), predictor(b)) for a, b in pairs]
            flips = sum(p.quadrant != q.quadrant for p, q in res)
            dv = np.mean([abs(p.valence - q.valence) for p, q in res])
            da = np.mean([abs(p.arousal - q.arousal) for p, q in res])
            print(f"| {model} | {flips} of {len(res)} ({flips / len(res):.0%}) | {dv:.3f} | {da:.3f} |")


if __name__ == "__main__":
    main()
