"""Synthetic music-like clips whose emotion cues are known, for demos and tests.

``clip(valence, arousal)`` renders a chord progression with a pulse: valence sets the
mode (major above 0, minor below) and brightness, arousal sets tempo, loudness and note
density. Labels are on the canonical [-1, 1] scale. Nothing here is real music: it only
gives the tests and the demo audio whose cues a model can learn, without any download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_MAJOR = (0, 4, 7)
_MINOR = (0, 3, 7)


def clip(valence: float, arousal: float, seconds: float = 10.0, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """A mono float32 clip in [-1, 1] of ``seconds`` at ``sr`` Hz carrying the given cues."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    bpm = 70 + 80 * (arousal + 1) / 2  # 70..150 beats per minute
    beat = 60.0 / bpm
    chord = _MAJOR if valence >= 0 else _MINOR
    root = 220.0 * 2 ** (rng.integers(0, 12) / 12)
    brightness = 2 + int(3 * (valence + 1) / 2)  # harmonics per note
    y = np.zeros(n)
    progression = (0, 5, 7, 0) if valence >= 0 else (0, 8, 3, 7)
    bar = 4 * beat
    for i, step in enumerate(progression * int(np.ceil(seconds / bar / 4) + 1)):
        start = int(i * bar * sr)
        if start >= n:
            break
        seg = slice(start, min(n, start + int(bar * sr)))
        ts = t[seg] - t[start]
        env = np.exp(-ts / (bar * 0.8))
        for interval in chord:
            f = root * 2 ** ((step + interval) / 12)
            for h in range(1, brightness + 1):
                y[seg] += env * np.sin(2 * np.pi * f * h * ts) / (h * len(chord))
    pulse_rate = beat / (1 + (arousal > 0.3))  # eighth notes when excited
    phase = (t % pulse_rate) / pulse_rate
    y += (0.3 + 0.5 * (arousal + 1) / 2) * rng.standard_normal(n) * np.exp(-phase * 40)  # percussion
    y *= 10 ** ((-18 + 12 * (arousal + 1) / 2) / 20) / max(np.abs(y).max(), 1e-9)  # -18..-6 dBFS peak
    return y.astype(np.float32)


def write_dataset(folder: str | os.PathLike, n: int = 40, seconds: float = 6.0, sr: int = 16000,
                  dynamic: bool = False, seed: int = 0) -> Path:
    """Write a "folder" dataset of ``n`` synthetic clips with labels that follow their cues.

    ``labels.csv`` holds (path, valence, arousal, artist) on the canonical scale. With
    ``dynamic=True`` each clip changes emotion halfway (two rendered halves) and
    ``dynamic.csv`` holds its 2 Hz curve; the static label is the mean of the two halves.
    Load it with ``load_dataset("folder", folder, dynamic="dynamic.csv")``.
    """
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, curves = ["path,valence,arousal,artist"], ["path,time,valence,arousal"]
    for i in range(n):
        va = rng.uniform(-0.8, 0.8, size=(2 if dynamic else 1, 2))
        parts = [clip(v, a, seconds / len(va), sr, seed=seed * 1000 + i) for v, a in va]
        name = f"clip{i:03d}.wav"
        sf.write(folder / name, np.concatenate(parts), sr)
        v, a = va.mean(axis=0)
        rows.append(f"{name},{v:.4f},{a:.4f},artist{i % max(2, n // 2)}")
        if dynamic:
            half = seconds / 2
            for k in range(1, int(seconds * 2) + 1):
                t = 0.5 * k
                cv, ca = va[0] if t <= half else va[1]
                curves.append(f"{name},{t:.1f},{cv:.4f},{ca:.4f}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    if dynamic:
        (folder / "dynamic.csv").write_text("\n".join(curves) + "\n")
    return folder
