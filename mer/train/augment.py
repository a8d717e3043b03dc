"""Augmented copies of a clip's log-mel features, for distillation (``mer train --distil ... --augment N``).

A student learns the teacher's function, not labels: any input the teacher can hear is
training data, and its target is whatever the teacher says about that very input. So the
transforms need not preserve the clip's emotion; they only widen the inputs seen. Each works
on mel power (the inverse of the front-end's ``log10(1 + 10000 x)``) and is drawn with
probability 1/2 (at least one per copy):

- **mix** with another training clip: ``(1 - a) p + a p'`` with ``a`` in [0.15, 0.4] (phases
  ignored, as power adds for independent sources);
- **spectral tilt**: ``s`` dB per octave around 1 kHz, ``s`` in [-3, 3];
- **pitch**: the mel axis shifted by up to 2 bands (about +-1.5 semitones above 1 kHz, where
  the mel scale is nearly logarithmic), by linear interpolation;
- **tempo**: the time axis resampled by a factor in [0.87, 1.15].

Mixed and tilted copies are scaled back to the clip's mean power, as the default front-end's
loudness normalisation (``level``) would do for the audio. Everything depends only on the
generator passed in, so copies are reproducible from (seed, fold, clip).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..features import FeatureConfig, hz_to_mel, mel_to_hz


def _power(x: np.ndarray) -> np.ndarray:
    return (np.power(10.0, x.astype(np.float64)) - 1.0) / 10000.0


def _compress(p: np.ndarray) -> np.ndarray:
    return np.log10(1.0 + 10000.0 * np.maximum(p, 0.0)).astype(np.float32)


def band_centres(feature: FeatureConfig) -> np.ndarray:
    """Centre frequencies (Hz) of the front-end's mel bands."""
    fmax = feature.fmax or feature.sample_rate / 2
    return mel_to_hz(np.linspace(hz_to_mel(feature.fmin), hz_to_mel(fmax), feature.n_mels + 2))[1:-1]


def _stretch(p: np.ndarray, factor: float) -> np.ndarray:
    """Time axis of ``(C, F, T)`` resampled to ``round(T / factor)`` frames (factor > 1: faster)."""
    t = p.shape[-1]
    n = max(2, int(round(t / factor)))
    src = np.linspace(0, t - 1, n)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, t - 1)
    w = src - i0
    return p[..., i0] * (1 - w) + p[..., i1] * w


def _shift_bands(p: np.ndarray, bands: float) -> np.ndarray:
    """Mel axis of ``(C, F, T)`` shifted up by ``bands`` (fractional; edges repeated)."""
    f = p.shape[-2]
    src = np.clip(np.arange(f) - bands, 0, f - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, f - 1)
    w = (src - i0)[:, None]
    return p[..., i0, :] * (1 - w) + p[..., i1, :] * w


def augment(x: np.ndarray, partner: np.ndarray, rng: np.random.Generator, feature: FeatureConfig
            ) -> tuple[np.ndarray, list[str]]:
    """One augmented copy of features ``x`` ``(C, F, T)`` (``partner``: another clip's features,
    for the mix) and the names of the transforms applied (module docstring)."""
    if feature.compression != "log10p":
        raise ConfigError("--augment works on the default log10(1 + 10000 x) log-mel features")
    use = rng.random(4) < 0.5
    if not use.any():
        use[rng.integers(4)] = True
    p = _power(x)
    level = p.mean()
    done = []
    if use[0]:
        q = _power(partner)
        reps = -(-p.shape[-1] // q.shape[-1])
        q = np.concatenate([q] * reps, axis=-1)
        start = int(rng.integers(0, q.shape[-1] - p.shape[-1] + 1))
        a = rng.uniform(0.15, 0.4)
        p = (1 - a) * p + a * q[..., start:start + p.shape[-1]]
        done.append("mix")
    if use[1]:
        slope = rng.uniform(-3.0, 3.0)
        gain_db = slope * np.log2(np.maximum(band_centres(feature), 20.0) / 1000.0)
        p = p * (10 ** (gain_db / 10))[:, None]
        done.append("tilt")
    if use[0] or use[1]:
        p = p * (level / max(p.mean(), 1e-12))
    if use[2]:
        p = _shift_bands(p, rng.uniform(-2.0, 2.0))
        done.append("pitch")
    if use[3]:
        p = _stretch(p, rng.uniform(0.87, 1.15))
        done.append("tempo")
    return _compress(p), done
