"""Does training on augmented copies help the default's quadrant probe? Nested CV, as the default's.

The default is a logistic regression on the frozen musicnn (MSD) embedding (mean and sd over
time) of loudness-normalised audio. Here every training clip is also embedded after waveform
augmentations that keep its emotion but change what a new artist's recording changes:

- **speed**: resampled by 0.92 and 1.08 (tempo -8 / +8 %, pitch -1.4 / +1.3 semitones);
- **tilt**: the spectrum tilted by -1.5 / +1.5 dB per octave around 1 kHz (a darker or
  brighter master).

The augmented copies join the training part only (with their clip's artist, so the inner folds
stay artist-grouped); test clips are always the original audio, so ``mer predict`` costs the
same. Scored with the default's repeated nested protocol (5 outer x 4 inner artist-grouped
folds, 5 seeds; C chosen inside), beside the shipped candidate re-run in the same process.
Embeddings of the variants are cached under ``~/.cache/mer/augment/``. Prints one markdown table.

Usage (from the repository root; needs the train extra and the data root, ``--data``)::

    python -m benchmarks.augment_4q --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, REFERENCE, ProbabilityClassifier, header, load, row

SR = 16000
VARIANTS = {"speed 0.92": ("speed", 0.92), "speed 1.08": ("speed", 1.08),
            "tilt -1.5 dB/oct": ("tilt", -1.5), "tilt +1.5 dB/oct": ("tilt", 1.5)}


def augment(y: np.ndarray, how: str, amount: float) -> np.ndarray:
    """One waveform augmentation of mono ``y`` at 16 kHz (module docstring)."""
    import soxr

    if how == "speed":  # play the samples back ``amount`` times faster
        return soxr.resample(y, SR * amount, SR).astype(np.float32)
    spec = np.fft.rfft(y)
    f = np.maximum(np.fft.rfftfreq(len(y), 1 / SR), 50.0)
    return np.fft.irfft(spec * 10 ** (amount * np.log2(f / 1000.0) / 20), len(y)).astype(np.float32)


def embeddings(tracks: list, variant: str | None) -> list[np.ndarray]:
    """Per-step musicnn embeddings of every track's (augmented) audio; cached per variant."""
    from mer import audio
    from mer.features import FeatureConfig, extract
    from mer.io import cache_root
    from mer.infer.inference import Inference
    from mer.models import create_model

    name = "orig" if variant is None else variant.replace(" ", "_").replace("/", "_")
    cache = cache_root() / "augment" / f"{name}.npz"
    ids = [t.track_id for t in tracks]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if list(z["ids"]) == ids:
                return [z[f"e{i}"] for i in range(len(ids))]
    feature = FeatureConfig(level=LEVEL)
    inference = Inference.from_module(create_model("musicnn", feature=feature, source="msd").eval())
    out = []
    t0 = time.perf_counter()
    for i, t in enumerate(tracks):
        y, _ = audio.load(t.audio_path, sr=SR)
        if variant is not None:
            y = augment(y, *VARIANTS[variant])
        out.append(inference.embed(extract(y, feature))[0])
        if i % 100 == 99:
            print(f"  {name}: {i + 1}/{len(tracks)} clips, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, ids=np.array(ids), **{f"e{i}": e for i, e in enumerate(out)})
    return out


class AugmentedLR(ProbabilityClassifier):
    """Standardise + logistic regression, fit on the training clips and their augmented copies.

    ``X`` holds clip indices (one column); ``bank[v][i]`` is clip i's features under variant v
    (``bank[0]`` the original audio, the only one predictions use)."""

    def __init__(self, bank: list[np.ndarray], use: tuple[int, ...], C: float = 0.01) -> None:
        self.bank, self.use, self.C = bank, use, C

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AugmentedLR":
        from mer.train.probe import make_model

        idx = X[:, 0].astype(int)
        feats = np.vstack([self.bank[v][idx] for v in (0, *self.use)])
        self.model = make_model("lr", C=self.C).fit(feats, np.tile(y, 1 + len(self.use)))
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.bank[0][X[:, 0].astype(int)])


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()]).parse_args(argv)
    from mer.train.nested import grid
    from mer.train.probe import pool

    root = data_root(args)
    data = load(data=root)
    bank = [pool(embeddings(data.tracks, v), "meanstd") for v in (None, *VARIANTS)]
    idx = np.arange(len(data.y))[:, None].astype(float)
    shift = np.mean([np.linalg.norm(b - bank[0], axis=1).mean() for b in bank[1:]]) / np.linalg.norm(
        bank[0] - bank[0].mean(0), axis=1).mean()
    header("Training on augmented copies", "training data", len(data.y),
           f"(mean distance of an augmented copy from its original, relative to the spread of the originals: "
           f"{shift:.2f})")
    for label, use in ((REFERENCE, ()), ("+ speed copies (0.92, 1.08)", (1, 2)),
                       ("+ tilt copies (-1.5, +1.5 dB/oct)", (3, 4))):
        row(label, idx, data, lambda C, u=use: AugmentedLR(bank, u, C), grid(C=C_GRID))


if __name__ == "__main__":
    main()
