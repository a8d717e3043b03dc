"""``make demo``: runs mer's main job on audio the repository generates (offline).

Renders a synthetic clip, writes it as WAV, decodes it back through :mod:`mer.audio`,
computes the default log-mel features and prints what it did.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import soundfile as sf

from . import audio, features, synth
from .io import atomic_path


def main(out_dir: str = "demo-output") -> int:
    out = Path(out_dir)
    wav = out / "demo-happy.wav"
    with atomic_path(wav) as tmp:
        sf.write(str(tmp), synth.clip(0.7, 0.6, seconds=30.0, sr=44100), 44100, subtype="PCM_16", format="WAV")
    print(f"wrote a 30 s synthetic clip: {wav}")
    cfg = features.FeatureConfig()
    t0 = time.perf_counter()
    y, sr = audio.load(wav, sr=cfg.sample_rate)
    feats = features.extract(y, cfg)
    dt = time.perf_counter() - t0
    print(f"decoded to {y.shape[-1]} samples at {sr} Hz, log-mel features {tuple(feats.shape)} "
          f"(channels, mel bands, frames at {cfg.frames_per_second:g}/s) in {dt * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
